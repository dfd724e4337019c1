// A MagicContext over the real library for magic-level tests (no kernel process, no widgets).
import assert from 'node:assert/strict';
import type { WidgetsApi } from '../../kernel/cell-api';
import { loadLibrary } from '../../kernel/library';
import { defaultMagics } from '../../kernel/magics';
import type { MagicContext } from '../../kernel/magics/registry';

export const registry = defaultMagics();

/** `over` replaces parts (a stand-in library, a signal to abort, recording widgets). */
export function context(over: Partial<MagicContext> = {}): { ctx: MagicContext; bound: Map<string, unknown> } {
  const bound = new Map<string, unknown>();
  const widgets: WidgetsApi = { create: () => assert.fail('no widget with --no-widget'), available: () => false, list: () => [] };
  const ctx: MagicContext = {
    lib: (what) => loadLibrary(what),
    signal: new AbortController().signal,
    hardStop: new Promise<never>(() => {}),
    session: { model: null, modelSource: null, data: undefined, datasets: new Map() },
    widgets,
    stdout: () => {},
    display: () => {},
    keep: async (v, as) => {
      bound.set('_', v);
      if (as) bound.set(as, v);
    },
    lookup: (n) => bound.get(n),
    background: () => {},
    registry,
    run: async () => assert.fail('these magics run no cell code'),
    ...over,
  };
  return { ctx, bound };
}

export async function run(ctx: MagicContext, line: string) {
  const [name, ...rest] = line.split(' ');
  const m = registry.get(name, false)!;
  const p = registry.parse(m, rest.join(' '));
  assert.equal(p.kind, 'run');
  return m.run(p as { opts: Record<string, unknown>; args: unknown[] }, ctx, undefined);
}

