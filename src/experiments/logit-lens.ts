// logit-lens: softmax(lm_head(final_norm(h_l))) at each position and layer, top-k tokens. h_l is the raw
// output of block l, so the norm is applied exactly once (HF's last hidden state is already normed:
// applying the norm to it again would be wrong). Image positions carry their patch-grid coordinates,
// to see when image tokens start to decode to the entity's name.
import * as tf from '@tensorflow/tfjs-core';
import { gridCoordinates, resolveSelector, toSelector, type Selector } from '../interventions/selectors';
import type { Model } from '../models/model';
import { batchesOf, makeBatch } from './batch';
import type { Row } from './checkpoint';
import { Progress, makeTable, type ExperimentContext } from './context';
import { prepareSource } from './sources/dataset';
import { viewPicture } from './picture';
import { protocolSummary } from './protocol';
import { layersOf, type SpecBase } from './spec';
import { scopeQuestions, type Modality, type PromptCase, type PromptSource } from './source';
import { gatherRows } from '../interventions/write';
import { logitLensView } from './views';

export interface LogitLensSpec extends SpecBase {
  kind: 'logit-lens';
  layers: number[] | null;
  topK: number;
  positions: 'image' | 'query' | 'last' | 'all' | number[] | Selector;
  prompts: 'identification' | 'questions';
  modality: Modality;
}

export function lensSelector(p: LogitLensSpec['positions']): Selector {
  if (Array.isArray(p)) return { kind: 'positions', positions: p };
  if (typeof p === 'object') return p;
  if (p === 'query') return { kind: 'after-image' };
  return toSelector(p);
}

interface LensCell {
  layer: number;
  position: number;
  tokens: number[];
  probs: number[];
  pEntity: number | null;
}

/** Top-k decoding of chosen layers at chosen positions for one batch (row-local positions per row). */
export function logitLensBatch(model: Model, out: Map<string, tf.Tensor>, layers: number[], positions: number[][], k: number, entityToken: (number | null)[]): LensCell[][] {
  const rows: LensCell[][] = positions.map(() => []);
  for (const l of layers) {
    const h = out.get(`lm.blocks.${l}.resid_post`)!;
    const T = h.shape[1] as number;
    const flat = positions.flatMap((ps, b) => ps.map((p) => b * T + p));
    if (flat.length === 0) continue;
    // Index of (selected position i, the row's entity token) in the flattened [n, V] probabilities.
    const entIdx: number[] = [];
    positions.forEach((ps, b) => ps.forEach(() => entIdx.push(entIdx.length * model.vocabSize + (entityToken[b] ?? 0))));
    const t = tf.tidy(() => {
      const probs = tf.softmax(model.unembed(gatherRows(h, flat)), -1);
      const top = tf.topk(probs, k);
      const ent = tf.gather(probs.reshape([-1]), tf.tensor1d(entIdx, 'int32'));
      return [top.values, top.indices, ent];
    });
    const [values, indices, pEnt] = t.map((x) => x.dataSync()) as [Float32Array, Int32Array, Float32Array];
    tf.dispose(t);
    let n = 0;
    positions.forEach((ps, b) =>
      ps.forEach((p) => {
        rows[b].push({
          layer: l,
          position: p,
          tokens: Array.from(indices.subarray(n * k, (n + 1) * k)),
          probs: Array.from(values.subarray(n * k, (n + 1) * k)),
          pEntity: entityToken[b] !== null ? pEnt[n] : null,
        });
        n++;
      }),
    );
  }
  return rows;
}

/** The summary `logitLens` builds, typed from its code (runExperiment's result is typed by kind from these). */
export type LogitLensSummary = Awaited<ReturnType<typeof logitLens>>['summary'];

export async function logitLens(model: Model, source: PromptSource, spec: LogitLensSpec, ctx: ExperimentContext = {}) {
  source = scopeQuestions(source, spec.questions);
  const progress = new Progress(ctx);
  const layers = layersOf(spec, model.numLayers);
  const sel = lensSelector(spec.positions);
  const entities = source.entities({ types: spec.types, limit: spec.limit, seed: spec.seed });
  await prepareSource(source, entities);
  const prompts: PromptCase[] = entities.flatMap((e) => {
    if (spec.prompts === 'questions') return source.questions(e, spec.modality).slice(0, 1);
    const p = spec.modality === 'image' ? source.identification(e) : source.naming(e);
    return p ? [p] : [];
  });
  const rows: Row[] = [];
  // The view is of the first prompt.
  let first: PromptCase | null = null;
  progress.start('logit lens', prompts.length);
  for (const group of batchesOf(prompts, spec.batchSize)) {
    ctx.signal?.throwIfAborted();
    const batch = await makeBatch(model, source, group);
    const out = model.forward(batch.inputs, { cache: layers.map((l) => `lm.blocks.${l}.resid_post`) });
    try {
      const positions = batch.rows.map((g) => resolveSelector(sel, g).prompt);
      const ent = group.map((c) => source.entityTokens(c.entity)[0] ?? null);
      const cells = logitLensBatch(model, out.cache, layers, positions, spec.topK, ent);
      const batchRows: Row[] = [];
      group.forEach((c, b) => {
        const off = batch.rows[b].offset;
        for (const cell of cells[b]) {
          const pos = cell.position - off;
          const g = gridCoordinates(c.spans, pos);
          const input = c.inputIds[pos];
          cell.tokens.forEach((t, rank) =>
            batchRows.push({
              prompt: c.id,
              entity: c.entity.key,
              layer: cell.layer,
              position: pos,
              kind: g ? 'image' : 'text',
              inputToken: input,
              inputText: g ? `img ${g.row},${g.col}` : source.decode([input]),
              gridRow: g ? g.row : null,
              gridCol: g ? g.col : null,
              rank,
              token: t,
              tokenText: source.decode([t]),
              prob: cell.probs[rank],
              pEntity: cell.pEntity,
              // The token pEntity is the probability of (the entity name's first token), so the table says it.
              entityToken: ent[b] === null ? null : source.decode([ent[b]!]),
            }),
          );
        }
        first ??= c;
      });
      rows.push(...batchRows);
      ctx.onPartial?.(batchRows);
    } finally {
      out.dispose();
      batch.dispose();
    }
    progress.tick(group.length);
  }
  // Set inside the batches' callbacks, which TypeScript's narrowing does not follow.
  const shown = first as PromptCase | null;
  const view = shown ? await viewOf(spec, shown, rows, source) : null;
  return {
    kind: spec.kind,
    spec,
    table: makeTable(rows),
    summary: {
      prompts: prompts.length,
      layers,
      positions: typeof spec.positions === 'string' ? spec.positions : 'custom',
      answer: topAnswer(rows),
      // The entity token is the name's first token as the tokenizer splits it in context (after a space).
      protocol: protocolSummary(source, spec, { entities, prefix: false, maxNewTokens: { identify: null, answer: null, patch: null }, extra: { entityToken: 'first token of " " + subject' } }),
      view,
    },
  };
}

/** Top-1 token of the first prompt at its last decoded layer and position (what a clicked cell shows). */
function topAnswer(rows: readonly Row[]): string | null {
  const first = rows.filter((r) => r.prompt === rows[0]?.prompt && r.rank === 0);
  if (first.length === 0) return null;
  const best = first.reduce((a, r) => ((r.layer as number) > (a.layer as number) || (r.layer === a.layer && (r.position as number) > (a.position as number)) ? r : a));
  return String(best.tokenText);
}

/**
 * The logit-lens view of one prompt: the live view's function on the rows (views.ts, the first prompt's
 * [layer][position][k] tokens and probabilities), with the picture under its patch grid, each patch coloured by
 * its layer's decoding (picture.ts).
 */
async function viewOf(spec: LogitLensSpec, c: PromptCase, rows: readonly Row[], source: PromptSource): Promise<Record<string, unknown> | null> {
  const view = logitLensView({ spec, rows, summary: {} });
  if (!view) return null;
  const positions = [...new Set(rows.filter((r) => r.prompt === c.id).map((r) => Number(r.position)))].sort((a, b) => a - b);
  return { prompt: c.id, ...view, image: await viewPicture(source, c, positions) };
}
