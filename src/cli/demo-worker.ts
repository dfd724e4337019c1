// `hopscope demo`'s second model on the other core: a worker thread that loads the compared model and runs its
// specs one after another while the main thread runs the first model's (src/cli/demo.ts `runDemo`). Each result
// goes back as its spec, summary and table (Arrow IPC, so the column types the CSV and Arrow files get are the
// ones an in-thread run writes); an analysis that fails goes back as its error and the others go on.
import { parentPort, workerData } from 'node:worker_threads';
import { toArrowIPC } from 'arquero';
import { initEngine, shutdownEngine } from '../engine/backend';
import { loadModelWithAssets, runExperiment } from '../experiments';

export interface DemoWorkerData {
  modelDir: string;
  dataDir: string;
  /** [index in the demo's spec list, spec]. */
  specs: [number, { kind: string; version: 1; [k: string]: unknown }][];
}

/** One message per spec, in order, then `done`. */
export type DemoWorkerMessage =
  | { index: number; kind: string; spec: unknown; summary: Record<string, unknown>; arrow: Uint8Array; seconds: number }
  | { index: number; error: { name: string; message: string } }
  | { done: true };

async function main(d: DemoWorkerData): Promise<void> {
  // One compute thread here and one in the main thread: the two models share the 2 cores.
  await initEngine({ threads: 1 });
  const model = loadModelWithAssets(d.modelDir);
  try {
    for (const [index, spec] of d.specs) {
      const t = performance.now();
      try {
        const r = await runExperiment(spec, { model, data: d.dataDir });
        const msg: DemoWorkerMessage = { index, kind: r.kind, spec: r.spec, summary: r.summary as Record<string, unknown>, arrow: toArrowIPC(r.table), seconds: (performance.now() - t) / 1000 };
        parentPort!.postMessage(msg);
      } catch (e) {
        parentPort!.postMessage({ index, error: { name: (e as Error).name, message: (e as Error).message } } satisfies DemoWorkerMessage);
      }
    }
  } finally {
    model.dispose();
    shutdownEngine();
  }
  parentPort!.postMessage({ done: true } satisfies DemoWorkerMessage);
}

if (parentPort && workerData?.specs) void main(workerData as DemoWorkerData);
