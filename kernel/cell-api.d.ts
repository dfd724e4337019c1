// What cells see: `hs` (the kernel helpers plus every export of src/index.ts, with the library's real types)
// and `widgets`. tsc checks the kernel against this file; tslab reads the same file from the generated
// declaration tree of cell-types.ts (src/ as .d.ts next to a copy of this file), never src/ itself.
import type { HsKernel } from './kernel-api';

export * from './kernel-api';

/** The types magics bind their `--as` variables with (MagicContext.keep): `model` is a Model, `xp` a ResultOf<'cross-patch'>. */
export type { EngineInfo, HookPointInfo, Model } from '../src/index';
export type { ResultOf } from '../src/experiments';

/** The library's exports, types only. */
export type Library = typeof import('../src/index');

/**
 * `hs`: the kernel helpers plus every export of src/index.ts with its real types, loaded on first use;
 * `runExperiment` gets the cell's signal when none is passed. A built-in kind's result is typed by kind
 * (`summary` is that kind's `...Summary`, experiments/registry.ts `ExperimentTypes`), so cells that read
 * summaries compile and `hs.` completes with signatures.
 */
export type Hs = HsKernel & Omit<Library, keyof HsKernel>;
