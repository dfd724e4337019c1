// A worker_threads Worker that runs one of this project's modules. TypeScript sources run through tsx, as
// bin/hopscope.js runs everything: Node 20 will not start a worker from a .ts path even under `--import tsx`
// (ERR_UNKNOWN_FILE_EXTENSION), so the worker evaluates a bootstrap that registers tsx first. Used for the
// training shards' replicas (src/train/shards.ts) and the demo's second model (src/cli/demo.ts).
import { Worker } from 'node:worker_threads';

export function startModuleWorker(file: string, workerData: unknown): Worker {
  const code = file.endsWith('.ts') ? `require('tsx/cjs/api').register(); require(${JSON.stringify(file)});` : `require(${JSON.stringify(file)});`;
  return new Worker(code, { eval: true, workerData });
}
