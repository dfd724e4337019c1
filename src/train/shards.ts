// Data-parallel steps that give the same bytes on any number of cores.
//
// Why: a teaching model's step is dominated by ~2,000 small ops on one wasm thread (data/teaching/README.md,
// session 31), and a second wasm thread brings nothing at these sizes. A step's cost does scale with its rows
// (LM stage, steady state: 166 ms at batch 32, 90 ms at 16; session 32), so the second core is used by splitting
// the batch instead. A stage's recipe says into how many *shards* each batch splits (part of the recipe: it
// changes the float sums); the gradient is the rows-weighted mean of the shards' gradients, as PyTorch's
// DistributedDataParallel averages per-rank gradients (each shard's loss is its own mean). How many *workers*
// compute the shards is an execution choice: worker p computes the shards s with s % workers == p, and every
// worker combines all shards' gradients in shard order with the same host arithmetic, so 1 or 2 workers write
// the same weights (test/train/shards.test.ts).
//
// The workers are the training thread and worker_threads sharing one SharedArrayBuffer: per step parity and
// shard, a slot holding the flat gradient, the shard's loss and its row count, and a barrier (Atomics) per step.
// Two parities let a fast worker write step t+1 while a slow one still reads step t: it cannot reach t+2 before
// the slow one arrives.
import { startModuleWorker } from '../engine/module-worker';

/** Rows [floor(s*B/n), floor((s+1)*B/n)) of a batch: an array of rows, or an object of per-row arrays. */
export function shardRows<B>(batch: B, s: number, n: number): { part: B; rows: number } {
  const cut = <T>(xs: T[]): T[] => xs.slice(Math.floor((s * xs.length) / n), Math.floor(((s + 1) * xs.length) / n));
  if (Array.isArray(batch)) {
    const part = cut(batch);
    return { part: part as B, rows: part.length };
  }
  if (batch === null || typeof batch !== 'object') throw new Error('shards: a batch must be an array of rows or an object of per-row arrays');
  const fields = Object.entries(batch as Record<string, unknown>).filter(([, v]) => v !== undefined);
  const lengths = new Set(fields.map(([k, v]) => {
    if (!Array.isArray(v)) throw new Error(`shards: batch field ${k} is not a per-row array, so the batch cannot be split by rows`);
    return v.length;
  }));
  if (lengths.size !== 1) throw new Error(`shards: the batch's per-row arrays differ in length (${[...lengths].join(', ')})`);
  const part = Object.fromEntries(fields.map(([k, v]) => [k, cut(v as unknown[])])) as B;
  const total = [...lengths][0];
  return { part, rows: Math.floor(((s + 1) * total) / n) - Math.floor((s * total) / n) };
}

/** Control words at the head of the shared buffer. */
const GEN = 0; // barrier generation: the step every worker has finished exchanging
const ARRIVED = 1;
const FAILED = 2; // 1 + rank of a worker that failed; 0 while all run
const CONTROL_INTS = 4;
/** Bytes after the control words for a failed worker's error text (UTF-8), so the others can say why. */
const ERROR_BYTES = 4096;

/** One worker's view of a sharded stage: which shards it computes and how the gradients meet. */
export class ShardGroup {
  readonly shards: number;
  readonly procs: number;
  readonly rank: number;
  readonly size: number;
  private readonly ctl: Int32Array;
  private readonly errorText: Uint8Array;
  private readonly slots: Float32Array[][];
  private readonly meta: Float64Array[][];
  /** How long a worker waits at a barrier before it says the others stopped (a replica's error reaches FAILED first). */
  private readonly timeoutMs: number;

  /** `size`: gradient floats per shard (every trainable parameter, flat, in name order). */
  static create(shards: number, procs: number, size: number): ShardGroup {
    if (!Number.isInteger(shards) || shards < 1) throw new Error(`shards: expected a positive integer (got ${shards})`);
    if (!Number.isInteger(procs) || procs < 1 || procs > shards) throw new Error(`shards: workers must be 1..${shards} (got ${procs})`);
    const bytes = CONTROL_INTS * 4 + ERROR_BYTES + 2 * shards * (size * 4 + 16);
    return new ShardGroup(new SharedArrayBuffer(bytes), shards, procs, 0, size);
  }

  constructor(readonly buffer: SharedArrayBuffer, shards: number, procs: number, rank: number, size: number, timeoutMs = 30 * 60_000) {
    this.shards = shards;
    this.procs = procs;
    this.rank = rank;
    this.size = size;
    this.timeoutMs = timeoutMs;
    this.ctl = new Int32Array(buffer, 0, CONTROL_INTS);
    this.errorText = new Uint8Array(buffer, CONTROL_INTS * 4, ERROR_BYTES);
    // Float64 metadata (loss, rows) for every parity and shard first, so it stays 8-byte aligned; then the slots.
    let off = CONTROL_INTS * 4 + ERROR_BYTES;
    this.meta = [0, 1].map(() => Array.from({ length: shards }, () => {
      const m = new Float64Array(buffer, off, 2);
      off += 16;
      return m;
    }));
    this.slots = [0, 1].map(() => Array.from({ length: shards }, () => {
      const g = new Float32Array(buffer, off, size);
      off += size * 4;
      return g;
    }));
  }

  /** What a replica needs to join (structured-cloneable: the buffer is shared, not copied). */
  handle(rank: number): ShardHandle {
    return { buffer: this.buffer, shards: this.shards, procs: this.procs, rank, size: this.size };
  }

  static join(h: ShardHandle): ShardGroup {
    return new ShardGroup(h.buffer, h.shards, h.procs, h.rank, h.size);
  }

  /** The shards this worker computes. */
  mine(): number[] {
    return Array.from({ length: this.shards }, (_, s) => s).filter((s) => s % this.procs === this.rank);
  }

  /** Where this worker writes shard s's gradient for `step`, and its loss and rows. */
  slot(step: number, s: number): Float32Array {
    return this.slots[step % 2][s];
  }

  put(step: number, s: number, loss: number, rows: number): void {
    const m = this.meta[step % 2][s];
    m[0] = loss;
    m[1] = rows;
  }

  /** Sets the barrier's generation to the step a (possibly resumed) stage starts at, before any replica starts. */
  start(step: number): void {
    Atomics.store(this.ctl, GEN, step);
    Atomics.store(this.ctl, ARRIVED, 0);
    Atomics.store(this.ctl, FAILED, 0);
  }

  /** Marks this worker failed, so the others stop at their next barrier instead of waiting for it; the first failure's message is kept. */
  fail(message = ''): void {
    if (Atomics.compareExchange(this.ctl, FAILED, 0, -1) === 0) {
      const bytes = new TextEncoder().encode(message).subarray(0, ERROR_BYTES);
      this.errorText.fill(0);
      this.errorText.set(bytes);
      Atomics.store(this.ctl, FAILED, this.rank + 1);
    }
    Atomics.notify(this.ctl, GEN);
  }

  /** The failed worker's message, when one failed. */
  failure(): string | null {
    const f = Atomics.load(this.ctl, FAILED);
    if (f <= 0) return null;
    const end = this.errorText.indexOf(0);
    const text = new TextDecoder().decode(this.errorText.slice(0, end < 0 ? ERROR_BYTES : end));
    return `worker ${f - 1} of ${this.procs}: ${text || 'no message'}`;
  }

  /**
   * Waits until every worker has written its shards for `step`, then returns the combined gradient (rows-weighted
   * mean over shards 0..n-1, summed in that order in float64 and rounded once) into `out`, and the combined loss.
   */
  combine(step: number, out: Float32Array): number {
    this.barrier(step);
    const slots = this.slots[step % 2];
    const meta = this.meta[step % 2];
    let total = 0;
    for (let s = 0; s < this.shards; s++) total += meta[s][1];
    if (!(total > 0)) throw new Error(`shards: step ${step} has no rows`);
    const used = Array.from({ length: this.shards }, (_, s) => s).filter((s) => meta[s][1] > 0);
    const w = used.map((s) => meta[s][1] / total);
    const g = used.map((s) => slots[s]);
    for (let i = 0; i < this.size; i++) {
      let acc = 0;
      for (let k = 0; k < g.length; k++) acc += w[k] * g[k][i];
      out[i] = acc;
    }
    let loss = 0;
    for (let k = 0; k < used.length; k++) loss += w[k] * meta[used[k]][0];
    return loss;
  }

  private barrier(step: number): void {
    if (Atomics.load(this.ctl, GEN) !== step) throw new Error(`shards: worker ${this.rank} reached step ${step} but the group is at ${Atomics.load(this.ctl, GEN)}`);
    const n = Atomics.add(this.ctl, ARRIVED, 1) + 1;
    if (n === this.procs) {
      Atomics.store(this.ctl, ARRIVED, 0);
      Atomics.store(this.ctl, GEN, step + 1);
      Atomics.notify(this.ctl, GEN);
      return;
    }
    const t0 = Date.now();
    while (Atomics.load(this.ctl, GEN) === step) {
      const failed = this.failure();
      if (failed) throw new Error(`shards: stopped at step ${step}, ${failed}`);
      if (Date.now() - t0 > this.timeoutMs) throw new Error(`shards: no word from the other workers for ${this.timeoutMs / 1000} s at step ${step}`);
      Atomics.wait(this.ctl, GEN, step, 1000);
    }
  }
}

export interface ShardHandle {
  buffer: SharedArrayBuffer;
  shards: number;
  procs: number;
  rank: number;
  size: number;
}

/**
 * Starts a worker thread running `file`, a module that reads `workerData` (src/train/replica.ts). A replica reports
 * its errors through the group (`fail`), which the training thread reads synchronously at its next barrier; the
 * promise resolves with the thread's exit code.
 */
export function startReplica(file: string, workerData: unknown): Promise<number> {
  const worker = startModuleWorker(file, workerData);
  return new Promise((resolve) => {
    worker.on('error', () => undefined);
    worker.on('exit', resolve);
  });
}
