// runExperiment with its patch sweeps on a queue: what `hopscope run --queue` and `hs.runExperiment(spec,
// { model, data, queue })` call. The model and data must be folders (workers load their own copies,
// matched by content hash).
import { InputError } from '../errors';
import { runExperiment, validateSpec, type ExperimentResult, type SpecBase, type RunContext } from '../experiments';
import { modelAssets } from '../experiments/assets';
import { isDataset } from '../experiments/sources/dataset';
import { QueueRun, type QueueReport, type QueueRunOptions } from './coordinator';

export interface QueuedContext extends RunContext, Partial<Omit<QueueRunOptions, 'spec' | 'model' | 'data'>> {
  queue: string;
  /** Model folder; default: the folder the model was loaded from. */
  modelDir?: string;
  /** Data folder; default: `data` when it is a folder path or a loaded PopVQA dataset. */
  dataDir?: string;
}

export type QueuedResult = ExperimentResult<SpecBase> & { queue: QueueReport };

function dataDirOf(ctx: QueuedContext): string | undefined {
  if (ctx.dataDir) return ctx.dataDir;
  if (ctx.data == null) return undefined;
  if (typeof ctx.data === 'string') return ctx.data;
  if (isDataset(ctx.data) && ctx.data.root) return ctx.data.root;
  throw new InputError('with a queue, data must be a data folder (a path or loadDataset(dir)): workers load their own copy of it, matched by content hash');
}

/** Runs `spec` here with its patch sweeps farmed out to the queue's workers; failed shards are in `queue.failed`. */
export async function runQueued(spec: unknown, ctx: QueuedContext): Promise<QueuedResult> {
  const valid = validateSpec(spec);
  const modelDir = ctx.modelDir ?? (ctx.model ? modelAssets(ctx.model).dir : undefined);
  if (!modelDir) throw new InputError('with a queue, the model must come from a folder (loadModel(dir)) or ctx.modelDir must name it: workers load their own copy, matched by content hash');
  const run = await QueueRun.open({ ...ctx, spec: valid, model: modelDir, data: dataDirOf(ctx) });
  try {
    const result = await runExperiment(valid, { ...ctx, executor: run.executor });
    const failed = run.report.failed;
    if (failed.length && Array.isArray(result.summary.warnings))
      result.summary.warnings.push(...failed.map((f) => `queue: shard ${f.shard} (${f.keys.length} patch jobs) failed after ${f.attempts} tries: ${f.error}`));
    return { ...result, queue: run.report };
  } finally {
    await run.close();
  }
}
