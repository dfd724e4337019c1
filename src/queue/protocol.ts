// What travels through Redis: a shard of one sweep of one spec, named by content hashes. No code and no
// tensors travel, only the validated spec, the hashes of the model and data folders, the sweep's index
// within the experiment and the keys of the patch jobs to run; results are table rows keyed by job key.
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Row } from '../experiments/checkpoint';
import { jsonHash } from './hash';

/** Bumped when ShardData or ShardResult change shape: older workers then listen on another queue. */
export const PROTOCOL = 1;

/** hopscope's version: a worker of another version refuses jobs (its rows could differ). */
export const HOPSCOPE_VERSION = (JSON.parse(fs.readFileSync(path.resolve(__dirname, '..', '..', 'package.json'), 'utf8')) as { version: string }).version;

/** BullMQ's key prefix for every hopscope queue in the Redis database. */
export const KEY_PREFIX = 'hopscope';

export interface ShardData {
  protocol: number;
  hopscope: string;
  /** Run identity: hash of (protocol, hopscope version, validated spec, model hash, data hash). */
  run: string;
  spec: unknown;
  model: string;
  /** Content hash of the data folder, or "none" for kinds that take no data. */
  data: string;
  /** Index of the sweep within the experiment (most kinds make one; attribution makes one per pair). */
  sweep: number;
  /** Patch-job keys (the experiment's own, e.g. "target|donor|layer"), in the order their rows are wanted. */
  keys: string[];
}

export interface ShardResult {
  /** Rows of every key of the shard. */
  rows: Record<string, Row[]>;
  /** Intervention warnings of the shard's jobs. */
  warnings: string[];
  /** Worker name (host:pid) that ran it. */
  worker: string;
  /** ms the worker spent running the shard's jobs, and before that waiting for its replay to reach the sweep. */
  ms: number;
  waitMs: number;
}

/** One queue per (protocol, model, data): a worker listens only to the queue of the weights and data it holds. */
export function queueName(modelHash: string, dataHash: string): string {
  return `p${PROTOCOL}-${modelHash.slice(0, 16)}-${dataHash.slice(0, 16)}`;
}

export function runIdOf(spec: unknown, modelHash: string, dataHash: string): string {
  return jsonHash({ protocol: PROTOCOL, hopscope: HOPSCOPE_VERSION, spec, model: modelHash, data: dataHash });
}

/**
 * A shard's job id: content-addressed, so a restarted coordinator adds the same ids (BullMQ ignores an id it
 * already holds) and finds the rows finished while it was away; two coordinators of one run share the work.
 */
export function shardId(run: string, sweep: number, keys: readonly string[]): string {
  return `${run.slice(0, 24)}-s${sweep}-${jsonHash(keys).slice(0, 24)}`;
}
