// The `hs` global of cells: kernel helpers first, then the library's exports, loaded on first access.
import type { Hs, HsKernel } from './cell-api';
import { currentSignal } from './execution';
import { type ExperimentContext, type ExperimentSpec, type ProgressEvent, ensureEngine, loadLibrary } from './library';
import type { ProgressBar } from './progress-bar';

// Names that inspection and promise machinery probe; answering them must not load the library.
const NOT_LIBRARY = new Set(['then', 'toJSON', 'constructor', 'inspect', 'asymmetricMatch', '$$typeof', 'nodeType']);

/** What the kernel adds to library calls beyond the cell's signal. */
export interface HsHooks {
  /** A progress bar in the running cell's output (kernel/progress-bar.ts), or null outside a cell. */
  progress?(label: string): ProgressBar | null;
}

export function createHs(helpers: HsKernel, hooks: HsHooks = {}): Hs {
  return new Proxy(helpers, {
    get(target, prop, receiver) {
      if (typeof prop === 'symbol' || prop in target) return Reflect.get(target, prop, receiver);
      if (NOT_LIBRARY.has(prop)) return undefined;
      const library = loadLibrary(`hs.${prop}`);
      const v = (library as unknown as Record<string, unknown>)[prop];
      if (prop === 'runExperiment' && typeof v === 'function') {
        const run = v as (spec: ExperimentSpec, ctx: ExperimentContext) => Promise<unknown>;
        return async (spec: ExperimentSpec, ctx: ExperimentContext) => {
          // The cell's signal unless the caller passed one; a progress bar beside the caller's own onProgress.
          const bar = hooks.progress?.(String((spec as { kind?: unknown })?.kind ?? 'experiment')) ?? null;
          const own = ctx?.onProgress;
          const onProgress = (ev: ProgressEvent) => {
            bar?.update(ev);
            own?.call(ctx, ev);
          };
          try {
            const result = await run(spec, { signal: currentSignal(), ...ctx, onProgress });
            bar?.finish();
            return result;
          } catch (e) {
            bar?.finish(e);
            throw e;
          }
        };
      }
      if (prop === 'loadModel' && typeof v === 'function') {
        // As %load: the model's weights go to the engine the CLI would use, not tfjs's cpu fallback.
        const loadModel = v as (...a: unknown[]) => Promise<unknown>;
        return async (...a: unknown[]) => {
          await ensureEngine(library);
          return loadModel(...a);
        };
      }
      return v;
    },
  }) as Hs;
}
