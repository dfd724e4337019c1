// The README's first steps over the real library: `%load teaching` brings the toyworld data the teaching model
// was trained on, so `%crosspatch` (and every other experiment magic) runs without `--data`.
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { after, test } from 'node:test';
import type { WidgetsApi } from '../../kernel/cell-api';
import { loadLibrary } from '../../kernel/library';
import { defaultMagics } from '../../kernel/magics';
import { TEACHING_DATA } from '../../kernel/magics/load';
import type { MagicContext } from '../../kernel/magics/registry';
import { initEngine, shutdownEngine } from '../../src/engine/backend';

const registry = defaultMagics();
after(() => shutdownEngine());

function context(): { ctx: MagicContext; bound: Map<string, unknown> } {
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
  };
  return { ctx, bound };
}

async function run(ctx: MagicContext, line: string) {
  const [name, ...rest] = line.split(' ');
  const m = registry.get(name, false)!;
  const p = registry.parse(m, rest.join(' '));
  assert.equal(p.kind, 'run');
  return m.run(p as { opts: Record<string, unknown>; args: unknown[] }, ctx, undefined);
}

test('%load teaching loads data/toyworld with the model; %crosspatch then runs without --data', async () => {
  await initEngine({ backend: 'cpu' });
  const { ctx, bound } = context();
  const out = await run(ctx, 'load teaching');
  assert.match(String(out.bundle?.['text/plain']), /loaded teaching .*6 layers.*data data[\\/]toyworld/);
  const data = ctx.session.data as { root: string; entities: unknown[] };
  assert.equal(path.resolve(data.root), TEACHING_DATA);
  assert.ok(data.entities.length > 0);
  assert.equal(ctx.session.datasets.get(TEACHING_DATA), data);

  const cp = await run(ctx, 'crosspatch --no-widget --limit 2 --layers 0-1 --as cp');
  const result = bound.get('cp') as { kind: string; table: { numRows(): number } };
  assert.equal(result.kind, 'cross-patch');
  assert.match(String(cp.bundle?.['text/plain']), /^cross-patch: \d+ rows/);
});

test('%load teaching --data DIR keeps the folder the user named', async () => {
  const { ctx } = context();
  await assert.rejects(run(ctx, `load teaching --data ${path.join(__dirname, 'no-such-data-folder')}`), /no-such-data-folder: not a data folder/);
  assert.equal(ctx.session.datasets.has(TEACHING_DATA), false);
});
