// Experiment specs: versioned JSON objects `{kind, version: 1, ...}`; the fields every kind shares, and the layer
// axis. Validation against schemas/<kind>.json lives in validate.ts (it reads the registry, which loads the
// experiments, which import this file: kept apart so nothing imports in a circle).
import { InputError, SpecError } from '../errors';
import type { QuestionSelection } from './source';
export type { ExperimentKind } from './registry';

export interface SpecBase {
  /** A registered kind (the built-in ones are `ExperimentKind`). */
  kind: string;
  version: 1;
  limit: number | null;
  types: string[] | null;
  seed: number;
  batchSize: number;
  template: string | null;
  match: 'popvqa' | 'alias';
  strict: boolean;
  rows: number[] | null;
  /** Which factual questions to use (kinds that draw them; schemas/common.json `questions`); null = all. */
  questions?: QuestionSelection | null;
  notes?: string;
}

/**
 * The spec's `rows` (indices into the kind's list of work items: pairs, edge sets), or every item. A missing
 * index is an InputError naming the kind and what the items are (it depends on the data, not the spec alone).
 */
export function selectRows<T>(spec: { kind: string; rows: number[] | null }, items: T[], what: string): T[] {
  if (!spec.rows) return items;
  return spec.rows.map((i) => {
    if (i >= items.length) throw new InputError(`${spec.kind}: rows ${i} does not exist (${items.length} ${what})`);
    return items[i];
  });
}

/** Layers to sweep: the spec's list checked against the model, or every layer. */
export function layersOf(spec: { layers?: number[] | null }, numLayers: number, field = 'layers'): number[] {
  if (!spec.layers) return Array.from({ length: numLayers }, (_, i) => i);
  for (const [i, l] of spec.layers.entries())
    if (l >= numLayers) throw new SpecError(`field "${field}[${i}]": layer ${l} does not exist; the model has ${numLayers} layers (0..${numLayers - 1})`, `${field}[${i}]`);
  return [...spec.layers].sort((a, b) => a - b);
}
