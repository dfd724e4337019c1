// The README's first steps over the real library: `%load teaching` brings the toyworld data the teaching model
// was trained on, so `%crosspatch` (and every other experiment magic) runs without `--data`.
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { after, test } from 'node:test';
import { TEACHING_DATA } from '../../kernel/magics/load';
import { initEngine, shutdownEngine } from '../../src/engine/backend';
import { context, run } from './magic-context';
import { TEACHING_LAYERS } from '../teaching-layers';

after(() => shutdownEngine());

test('%load teaching loads data/toyworld with the model; %crosspatch then runs without --data', async () => {
  await initEngine({ backend: 'cpu' });
  const { ctx, bound } = context();
  const out = await run(ctx, 'load teaching');
  assert.match(String(out.bundle?.['text/plain']), new RegExp(`loaded teaching .*${TEACHING_LAYERS} layers.*data data[\\\\/]toyworld`));
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
