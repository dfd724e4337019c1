// What cells see: `hs` (the kernel helpers plus every export of src/index.ts, with the library's real types)
// and `widgets`. tsc checks the kernel against this file; tslab reads the same file from the generated
// declaration tree of cell-types.ts (src/ as .d.ts next to a copy of this file), never src/ itself.
import type { HsKernel } from './kernel-api';

export * from './kernel-api';

/** The library's exports, types only. */
export type Library = typeof import('../src/index');

/**
 * `hs`: the kernel helpers plus every export of src/index.ts, loaded on first use; `runExperiment` gets the
 * cell's signal when none is passed.
 */
export interface Hs extends HsKernel, Omit<Library, keyof HsKernel> {}
