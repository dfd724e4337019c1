// The `hs` global of cells: kernel helpers first, then the library's exports, loaded on first access.
import type { Hs, HsKernel } from './cell-api';
import { currentSignal } from './execution';
import { type ExperimentContext, type ExperimentSpec, loadLibrary } from './library';

// Names that inspection and promise machinery probe; answering them must not load the library.
const NOT_LIBRARY = new Set(['then', 'toJSON', 'constructor', 'inspect', 'asymmetricMatch', '$$typeof', 'nodeType']);

export function createHs(helpers: HsKernel): Hs {
  return new Proxy(helpers, {
    get(target, prop, receiver) {
      if (typeof prop === 'symbol' || prop in target) return Reflect.get(target, prop, receiver);
      if (NOT_LIBRARY.has(prop)) return undefined;
      const lib = loadLibrary(`hs.${prop}`) as unknown as Record<string, unknown>;
      const v = lib[prop];
      if (prop === 'runExperiment' && typeof v === 'function') {
        const run = v as (spec: ExperimentSpec, ctx: ExperimentContext) => Promise<unknown>;
        return (spec: ExperimentSpec, ctx: ExperimentContext) => run(spec, { signal: currentSignal(), ...ctx });
      }
      return v;
    },
  }) as Hs;
}
