// `hopscope worker --queue URL --model DIR [--data DIR] [--concurrency N]`: serves the shards of queued runs
// (`hopscope run --queue`) for one model and data folder until stopped (SIGTERM/SIGINT finish the running
// shards first; SIGKILL loses nothing either: the shard is taken over when its lease lapses).
import type { Command } from 'commander';
import { describeEngine, initEngine, type BackendName } from '../engine/backend';
import { InputError } from '../errors';
import type { WorkerOptions } from '../queue/worker';

/** The library's worker options (src/queue/worker.ts), plus what the command adds around them. */
export interface WorkerCommandOptions extends Pick<WorkerOptions, 'queue' | 'model' | 'data' | 'backbone' | 'concurrency' | 'leaseMs'> {
  /** Exit after this many ms without a shard (SLURM job arrays: the allocation ends when the queue is drained). */
  idleExitMs?: number;
  backend?: string;
  threads?: number;
}

function positive(name: string, v: string | undefined): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isFinite(n) || n <= 0) throw new InputError(`${name} ${JSON.stringify(v)} must be a positive number`);
  return n;
}

/** Runs a worker until a signal (or `idleExitMs` without work); resolves when it has shut down. */
export async function runWorker(o: WorkerCommandOptions): Promise<void> {
  const engine = await initEngine({ backend: o.backend as BackendName | undefined, threads: o.threads });
  process.stderr.write(`hopscope: ${describeEngine(engine)}\n`);
  const { startWorker } = require('../queue') as typeof import('../queue');
  const { idleExitMs: _i, backend: _b, threads: _t, ...workerOptions } = o;
  const w = await startWorker(workerOptions);
  await new Promise<void>((resolve) => {
    let last = w.completed;
    let idleSince = Date.now();
    const timer = o.idleExitMs
      ? setInterval(() => {
          if (w.completed !== last) {
            last = w.completed;
            idleSince = Date.now();
          } else if (Date.now() - idleSince > o.idleExitMs!) stop('idle');
        }, 1000)
      : null;
    function stop(why: string) {
      if (timer) clearInterval(timer);
      process.removeListener('SIGTERM', onTerm);
      process.removeListener('SIGINT', onTerm);
      process.stderr.write(`hopscope worker: ${why}; finishing running shards (${w.completed} done)\n`);
      resolve();
    }
    const onTerm = () => stop('stopping');
    process.once('SIGTERM', onTerm);
    process.once('SIGINT', onTerm);
  });
  await w.close();
}

/** Adds `worker` to the hopscope program (src/cli/main.ts). */
export function registerWorker(program: Command): void {
  program
    .command('worker')
    .description('serve queued runs (hopscope run --queue) with one model and data folder; see docs/cluster.md')
    .requiredOption('--queue <url>', 'redis://HOST:PORT/DB (rediss:// for TLS, password in the URL)')
    .requiredOption('--model <dir>', 'HuggingFace model folder (jobs name it by content hash)')
    .option('--data <dir>', 'data folder (jobs name it by content hash)')
    .option('--backbone <dir>', 'text-only backbone LLM folder (recovery specs)')
    .option('--concurrency <n>', 'shards at once', '1')
    .option('--lease <seconds>', "a running shard's lease: a killed worker's shard is taken over after it", '30')
    .option('--idle-exit <seconds>', 'exit after this long without a shard (batch allocations)')
    .action(async (o: { queue: string; model: string; data?: string; backbone?: string; concurrency: string; lease: string; idleExit?: string }) => {
      const g = program.opts<{ backend?: string; threads?: string }>();
      await runWorker({
        queue: o.queue,
        model: o.model,
        data: o.data,
        backbone: o.backbone,
        concurrency: positive('--concurrency', o.concurrency),
        leaseMs: positive('--lease', o.lease)! * 1000,
        idleExitMs: o.idleExit ? positive('--idle-exit', o.idleExit)! * 1000 : undefined,
        backend: g.backend,
        threads: g.threads ? Number(g.threads) : undefined,
      });
    });
}
