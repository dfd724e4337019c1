// What cells see: `hs` (the kernel helpers plus every export of src/index.ts, with the library's real types)
// and `widgets`. tsc checks the kernel against this file; tslab reads the same file from the generated
// declaration tree of cell-types.ts (src/ as .d.ts next to a copy of this file), never src/ itself.
import type { HsKernel } from './kernel-api';

export * from './kernel-api';

/** The library's exports, types only. */
export type Library = typeof import('../src/index');

/**
 * `hs`: the kernel helpers plus every export of src/index.ts, loaded on first use; `runExperiment` gets the
 * cell's signal when none is passed. Library members are typed loosely for now: with `Library`'s real types,
 * every notebook cell that reads an experiment's summary (`Record<string, unknown>`) or a table row fails to
 * compile (the full suite's notebook run, 2026-12-02). `Library` stays exported so a cell can opt in
 * (`const lib = hs as unknown as import(...).Library`); typed `hs` waits for typed summaries per kind (#13, #16).
 */
export interface Hs extends HsKernel {
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  readonly [member: string]: any;
}
