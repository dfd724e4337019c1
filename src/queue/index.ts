// Sweeps beyond one machine: experiment specs sharded over a Redis-backed BullMQ queue (docs/cluster.md).
export { runQueued, type QueuedContext, type QueuedResult } from './run';
export { QueueRun, type QueueRunOptions, type QueueReport, type ShardFailure } from './coordinator';
export { startWorker, type WorkerOptions, type QueueWorker } from './worker';
export { contentHash } from './hash';
export { queueName, KEY_PREFIX, PROTOCOL, type ShardData, type ShardResult } from './protocol';
export { redactUrl } from './connection';
