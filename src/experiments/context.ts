// What every experiment shares: the run context (cancellation, progress, partial rows, run folder),
// the result shape, progress phases, answer scoring and the identification step.
import * as path from 'node:path';
import * as aq from 'arquero';
import { matchAnswer, mentionsEntity, type MatchRule } from '../data/answer-match';
import type { Model } from '../models/model';
import { RunCheckpoint, type Row } from './checkpoint';
import { generateAll, type Generation } from './greedy';
import type { SpecBase } from './spec';
import type { EntityRef, PromptCase, PromptSource } from './source';
import type { SweepExecutor } from './scheduler';

export interface ProgressEvent {
  done: number;
  total: number;
  /** The phase running (e.g. "identification", "sweep"). */
  message?: string;
}

export interface ExperimentContext {
  signal?: AbortSignal;
  onProgress?(ev: ProgressEvent): void;
  /** Rows of the result table as they are produced (sweeps stream them per finished run). */
  onPartial?(rows: Row[]): void;
  /** Run folder: finished work is checkpointed there (rows.jsonl) and skipped when the run is resumed. */
  runDir?: string;
  /** Text-only backbone LLM (recovery); else the spec's `backbone` folder is loaded. */
  backbone?: Model;
  /** Run every intervened forward in full, one at a time (the scheduler's reference; tests and benchmarks). */
  naive?: boolean;
  /** Runs the experiment's patch sweeps elsewhere (a job queue: src/queue); everything else runs here. */
  executor?: SweepExecutor;
}

/** What an experiment's summary is when nothing more is known of its kind (a registered kind, a saved run). */
export type Summary = Record<string, unknown>;

export interface ExperimentResult<S = SpecBase, M extends object = Summary> {
  kind: string;
  spec: S;
  /** An arquero ColumnTable, one row per measurement (long format). */
  table: aq.ColumnTable;
  /** The kind's headline numbers (each experiment module exports its `...Summary` type), `protocol` and `view`. */
  summary: M;
}

/** Progress in phases: each phase reports done/total and its name. */
export class Progress {
  private phase = '';
  private total = 0;
  private done = 0;
  constructor(private readonly ctx: ExperimentContext) {}
  start(phase: string, total: number): void {
    this.phase = phase;
    this.total = total;
    this.done = 0;
    this.emit();
  }
  tick(n = 1): void {
    this.done += n;
    this.emit();
  }
  set(done: number): void {
    this.done = done;
    this.emit();
  }
  private emit(): void {
    this.ctx.onProgress?.({ done: this.done, total: this.total, message: this.phase });
  }
}

export function ruleOf(match: SpecBase['match']): MatchRule {
  return match === 'alias' ? 'exact' : 'popvqa';
}

export function otherRule(match: SpecBase['match']): SpecBase['match'] {
  return match === 'alias' ? 'popvqa' : 'alias';
}

/** Human name of a rule as the views print it. */
export function ruleLabel(match: SpecBase['match']): string {
  return match === 'alias' ? 'alias-exact' : 'popvqa-words';
}

export function answerCorrect(text: string, c: PromptCase, match: SpecBase['match']): boolean {
  return matchAnswer(text, c.answers ?? [], ruleOf(match)).correct;
}

export function names(text: string, e: EntityRef, match: SpecBase['match']): boolean {
  return mentionsEntity(text, e.subject, e.aliases, ruleOf(match)).correct;
}

export function openCheckpoint(ctx: ExperimentContext, spec: unknown): RunCheckpoint | undefined {
  return ctx.runDir ? RunCheckpoint.open(path.resolve(ctx.runDir), spec) : undefined;
}

/** Greedy generation with the run folder's checkpoint: prompts answered before are not run again. */
export async function generateCached(
  model: Model,
  source: PromptSource,
  cases: readonly PromptCase[],
  opts: { maxNewTokens: number; batchSize: number; tag: string },
  ctx: ExperimentContext,
  cp: RunCheckpoint | undefined,
  progress: Progress,
): Promise<Map<string, Pick<Generation, 'tokens' | 'text'>>> {
  const out = new Map<string, Pick<Generation, 'tokens' | 'text'>>();
  const key = (c: PromptCase) => `gen/${opts.tag}/${opts.maxNewTokens}/${c.id}`;
  const todo: PromptCase[] = [];
  for (const c of cases) {
    const saved = cp?.rows(key(c));
    if (saved) out.set(c.id, { tokens: saved[0].tokens as number[], text: String(saved[0].text) });
    else todo.push(c);
  }
  progress.start(opts.tag, cases.length);
  progress.set(cases.length - todo.length);
  const fresh = await generateAll(model, source, todo, { maxNewTokens: opts.maxNewTokens, batchSize: opts.batchSize, signal: ctx.signal, onDone: (n) => progress.tick(n) });
  for (const c of todo) {
    const g = fresh.get(c.id)!;
    out.set(c.id, { tokens: g.tokens, text: g.text });
    cp?.add(key(c), [{ tokens: g.tokens, text: g.text }]);
  }
  return out;
}

export interface Identification {
  entity: EntityRef;
  prompt: PromptCase;
  text: string;
  identified: boolean;
}

/** The identification step (Cohen et al.): the greedy answer to the identification query names the subject or an alias. */
export async function identify(
  model: Model,
  source: PromptSource,
  entities: readonly EntityRef[],
  spec: SpecBase & { identifyTokens?: number },
  ctx: ExperimentContext,
  cp: RunCheckpoint | undefined,
  progress: Progress,
): Promise<Identification[]> {
  const prompts = entities.flatMap((e) => {
    const p = source.identification(e);
    return p ? [p] : [];
  });
  const gens = await generateCached(model, source, prompts, { maxNewTokens: spec.identifyTokens ?? 20, batchSize: spec.batchSize, tag: 'identify' }, ctx, cp, progress);
  return prompts.map((p) => {
    const text = gens.get(p.id)!.text;
    return { entity: p.entity, prompt: p, text, identified: names(text, p.entity, spec.match) };
  });
}

/** The entities the model identifies from their image (all of them when `identifiedOnly` is off). */
export async function identifiedPool(
  model: Model,
  source: PromptSource,
  entities: EntityRef[],
  spec: SpecBase & { identifiedOnly: boolean; maxNewTokens: number; identifyTokens?: number },
  ctx: ExperimentContext,
  cp: RunCheckpoint | undefined,
  progress: Progress,
): Promise<EntityRef[]> {
  if (!spec.identifiedOnly) return entities;
  const ids = await identify(model, source, entities, { ...spec, identifyTokens: spec.identifyTokens ?? spec.maxNewTokens }, ctx, cp, progress);
  const keep = new Set(ids.filter((r) => r.identified).map((r) => r.entity.key));
  return entities.filter((e) => keep.has(e.key));
}

export function makeTable(rows: Row[]): aq.ColumnTable {
  return aq.from(rows);
}

export function mean(xs: readonly number[]): number {
  return xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : NaN;
}

/** Warnings collected once each. */
export class Warnings {
  private readonly seen = new Set<string>();
  add(ws: readonly string[]): void {
    for (const w of ws) this.seen.add(w);
  }
  list(): string[] {
    return [...this.seen];
  }
}

/** The sweep options every experiment passes the same way: batching, cancellation, checkpoint, progress, warnings. */
export function sweepContext(
  spec: SpecBase,
  ctx: ExperimentContext,
  checkpoint: RunCheckpoint | undefined,
  progress: Progress,
  warnings: Warnings,
): {
  batchSize: number;
  signal?: AbortSignal;
  naive?: boolean;
  strict: boolean;
  checkpoint?: RunCheckpoint;
  onRows(rows: Row[]): void;
  onProgress(done: number): void;
  onWarnings(w: string[]): void;
  executor?: SweepExecutor;
} {
  return {
    executor: ctx.executor,
    batchSize: spec.batchSize,
    signal: ctx.signal,
    naive: ctx.naive,
    strict: spec.strict,
    checkpoint,
    onRows: (r) => ctx.onPartial?.(r),
    onProgress: (n) => progress.set(n),
    onWarnings: (w) => warnings.add(w),
  };
}
