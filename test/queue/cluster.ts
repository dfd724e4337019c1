// Processes of a test cluster: `hopscope worker` and `hopscope run --queue` children on the teaching model,
// and a view of the queue (which worker holds which shard) through BullMQ itself.
import { spawn, type ChildProcess } from 'node:child_process';
import * as path from 'node:path';
import { Queue } from 'bullmq';
import * as aq from 'arquero';
import { contentHash, KEY_PREFIX, queueName } from '../../src/queue';
import { track } from './redis';
import { TEACHING_DIR } from '../../src/data/teaching-models';

export const REPO = path.resolve(__dirname, '..', '..');
export const MODEL = TEACHING_DIR;
export const DATA = path.join(REPO, 'data', 'toyworld');
const BIN = path.join(REPO, 'bin', 'hopscope.js');

export interface Child {
  proc: ChildProcess;
  log(): string;
  exited: Promise<number | null>;
}

/** A hopscope child process (one wasm thread each: the test machine is small and shared). */
export function hopscope(args: string[]): Child {
  const proc = track(spawn(process.execPath, [BIN, ...args], { cwd: REPO, env: { ...process.env, HOPSCOPE_THREADS: '1' }, stdio: ['ignore', 'pipe', 'pipe'] }));
  let log = '';
  proc.stdout!.on('data', (b: Buffer) => (log += b.toString()));
  proc.stderr!.on('data', (b: Buffer) => (log += b.toString()));
  const exited = new Promise<number | null>((r) => proc.once('exit', (code) => r(code)));
  return { proc, log: () => log, exited };
}

/** Polls `cond` until it returns a value (not undefined/false); fails naming `what` after `ms`. */
export async function until<T>(what: string, cond: () => Promise<T | undefined | false> | T | undefined | false, ms = 240_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await cond();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** Starts a worker and waits until it listens; returns it with its name (host:pid). */
export async function startWorkerProcess(url: string, leaseSeconds: number): Promise<Child & { name: string }> {
  const c = hopscope(['worker', '--queue', url, '--model', MODEL, '--data', DATA, '--lease', String(leaseSeconds)]);
  const name = await until('a worker to start', () => {
    if (c.proc.exitCode !== null) throw new Error(`worker exited (${c.proc.exitCode}):\n${c.log()}`);
    return /hopscope worker (\S+): model/.exec(c.log())?.[1];
  });
  return { ...c, name };
}

export function testQueue(url: string): Queue {
  const u = new URL(url);
  const q = new Queue(queueName(contentHash(MODEL), contentHash(DATA)), { prefix: KEY_PREFIX, connection: { host: u.hostname, port: Number(u.port), db: Number(u.pathname.slice(1) || 0) } });
  q.on('error', () => {});
  return q;
}

/** Row-for-row equality of two tables: same columns, numbers within `tol`, everything else equal. */
export function tableDiff(a: aq.ColumnTable, b: aq.ColumnTable, tol = 1e-6): string | null {
  if (a.columnNames().join() !== b.columnNames().join()) return `columns differ: ${a.columnNames()} vs ${b.columnNames()}`;
  if (a.numRows() !== b.numRows()) return `row counts differ: ${a.numRows()} vs ${b.numRows()}`;
  const ra = a.objects() as Record<string, unknown>[];
  const rb = b.objects() as Record<string, unknown>[];
  for (let i = 0; i < ra.length; i++)
    for (const c of a.columnNames()) {
      const x = ra[i][c];
      const y = rb[i][c];
      const same = typeof x === 'number' && typeof y === 'number' ? Math.abs(x - y) <= tol || (Number.isNaN(x) && Number.isNaN(y)) : x === y;
      if (!same) return `row ${i} column ${c}: ${JSON.stringify(x)} vs ${JSON.stringify(y)}`;
    }
  return null;
}
