// `hopscope run SPEC.json --model DIR [--data DIR] --out DIR`: validates the spec, runs the experiment with
// a progress bar, checkpoints finished work in the out folder (an interrupted run resumes there), and
// writes the table as CSV and Arrow plus summary.json. With --queue the patch sweeps run on workers
// (src/queue) and the same files are written.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { SingleBar, Presets } from 'cli-progress';
import type { Command } from 'commander';
import { describeEngine, initEngine, type BackendName } from '../engine/backend';
import { HopscopeError, InputError, SpecError } from '../errors';
import { loadModelWithAssets } from '../experiments/assets';
import { runExperiment, validateSpec, writeTable, type ProgressEvent } from '../experiments';
import { readRawPrompts } from '../experiments/sources/raw';
import { loadPopVQA } from '../data/popvqa';
import type { Model } from '../models/model';

export interface RunCommandOptions {
  model: string;
  data?: string;
  out: string;
  backbone?: string;
  progress?: boolean;
  backend?: string;
  threads?: number;
  /** redis://HOST:PORT/DB: the patch sweeps run on that queue's workers (hopscope worker, docs/cluster.md). */
  queue?: string;
  /** Patch jobs per queued shard. */
  shardSize?: number;
}

function readSpec(file: string): unknown {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    throw new InputError(`cannot read the spec ${file}: ${(e as Error).message}`);
  }
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new SpecError(`${file} is not JSON: ${(e as Error).message}`);
  }
}

function loadData(dir: string): unknown {
  const root = path.resolve(dir);
  if (fs.existsSync(path.join(root, 'prompts.json'))) return readRawPrompts(path.join(root, 'prompts.json'));
  return loadPopVQA(root);
}

/** Runs one spec file; returns the files written. */
export async function runSpecFile(specFile: string, o: RunCommandOptions): Promise<{ csv: string; arrow: string; summary: string }> {
  const spec = validateSpec(readSpec(specFile));
  const engine = await initEngine({ backend: o.backend as BackendName | undefined, threads: o.threads });
  process.stderr.write(`hopscope: ${describeEngine(engine)}\n`);
  const model = loadModelWithAssets(path.resolve(o.model));
  let backbone: Model | undefined;
  const controller = new AbortController();
  const onSigint = () => {
    process.stderr.write('\nhopscope: interrupted; finished work is kept in the out folder, run again to resume\n');
    controller.abort(new Error('interrupted'));
  };
  process.once('SIGINT', onSigint);
  const bar = o.progress === false ? null : new SingleBar({ format: '{phase} [{bar}] {value}/{total} {eta_formatted}', hideCursor: true, clearOnComplete: false }, Presets.shades_classic);
  let phase = '';
  const onProgress = (ev: ProgressEvent) => {
    if (!bar) return;
    if (ev.message !== phase) {
      if (phase) bar.stop();
      phase = ev.message ?? '';
      bar.start(Math.max(ev.total, 1), ev.done, { phase: phase.padEnd(16) });
    } else bar.update(ev.done);
  };
  const started = Date.now();
  try {
    if (o.backbone) backbone = loadModelWithAssets(path.resolve(o.backbone));
    const ctx = { model, data: o.data ? loadData(o.data) : undefined, backbone, runDir: o.out, signal: controller.signal, onProgress };
    // The queue code (bullmq, ioredis) loads only for queued runs.
    const result = o.queue
      ? await (require('../queue') as typeof import('../queue')).runQueued(spec, { ...ctx, queue: o.queue, modelDir: path.resolve(o.model), dataDir: o.data, shardSize: o.shardSize })
      : { ...(await runExperiment(spec, ctx)), queue: undefined };
    bar?.stop();
    const files = writeTable(result.table, o.out);
    const summary = path.join(o.out, 'summary.json');
    fs.writeFileSync(
      summary,
      JSON.stringify({ kind: result.kind, spec: result.spec, model: path.resolve(o.model), data: o.data ? path.resolve(o.data) : null, engine: describeEngine(engine), seconds: (Date.now() - started) / 1000, rows: result.table.numRows(), summary: result.summary, ...(result.queue ? { queue: result.queue } : {}) }, null, 2) + '\n',
    );
    process.stderr.write(`hopscope: ${result.table.numRows()} rows -> ${files.csv}, ${files.arrow}, ${summary}\n`);
    const failed = result.queue?.failed ?? [];
    if (failed.length)
      throw new HopscopeError(
        `${failed.length} shard(s) of ${result.queue!.shards} failed; the other rows are written (summary.json "queue.failed" lists the failed patch jobs). First error: ${failed[0].error}. Fix the cause and run the same command to retry them`,
      );
    return { ...files, summary };
  } catch (e) {
    if (controller.signal.aborted) throw new HopscopeError(`interrupted; the finished work is checkpointed in ${o.out}: run the same command to resume`);
    throw e;
  } finally {
    bar?.stop();
    process.removeListener('SIGINT', onSigint);
    backbone?.dispose();
    model.dispose();
  }
}

/** Adds `run` to the hopscope program (src/cli/main.ts). */
export function registerRun(program: Command): void {
  program
    .command('run')
    .description('run an experiment spec (JSON, see docs/experiments.md) and write table.csv, table.arrow, summary.json')
    .argument('<spec>', 'experiment spec file {"kind": ..., "version": 1, ...}')
    .requiredOption('--model <dir>', 'HuggingFace model folder (config.json + safetensors [+ tokenizer.json])')
    .option('--data <dir>', 'data folder: PopVQA format (entities.csv, questions.csv, images) or prompts.json')
    .requiredOption('--out <dir>', 'output folder (also the checkpoint: rerun to resume an interrupted run)')
    .option('--backbone <dir>', "text-only backbone LLM folder (recall-gap, recovery; default: the model folder's backbone/)")
    .option('--no-progress', 'no progress bar')
    .option('--queue <url>', 'run the patch sweeps on a job queue: redis://HOST:PORT/DB (workers: hopscope worker; docs/cluster.md)')
    .option('--shard-size <n>', 'patch jobs per queued shard (default 4 x batchSize)')
    .action(async (specFile: string, o: { model: string; data?: string; out: string; backbone?: string; progress: boolean; queue?: string; shardSize?: string }) => {
      const g = program.opts<{ backend?: string; threads?: string }>();
      await runSpecFile(specFile, { ...o, shardSize: o.shardSize ? Number(o.shardSize) : undefined, backend: g.backend, threads: g.threads ? Number(g.threads) : undefined });
    });
}

/** The same command for callers without commander: `runCommand(['spec.json', '--model', dir, '--out', dir])`. */
export async function runCommand(argv: string[]): Promise<void> {
  const { Command } = await import('commander');
  const program = new Command('hopscope').exitOverride();
  registerRun(program);
  await program.parseAsync(['run', ...argv], { from: 'user' });
}
