// Magic parsing (commander, captured output, errors naming the argument) and the magic layer over the library
// contract, driven with the stand-in library and a recording context: no kernel, no sockets.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { WidgetHandle, WidgetsApi } from '../../kernel/cell-api';
import { KernelInterrupt } from '../../kernel/display';
import type { Library } from '../../kernel/library';
import { answerOf, oneCellSpec } from '../../kernel/magics/experiment-runner';
import { type MagicContext, UsageError, parseLayers, tokenize } from '../../kernel/magics/registry';
import * as fake from './fixtures/fake-library';
import { context, registry } from './magic-context';


test('tokenize splits like a shell: quotes group, backslash escapes', () => {
  assert.deepEqual(tokenize(`--filter "resid post" --as 'm 2' a\\ b ""`), ['--filter', 'resid post', '--as', 'm 2', 'a b', '']);
  assert.throws(() => tokenize('--filter "open'), UsageError);
});

test('parseLayers takes ranges and lists, rejects nonsense', () => {
  assert.deepEqual(parseLayers('5-7'), [5, 6, 7]);
  assert.deepEqual(parseLayers('3,0,8-9,3'), [0, 3, 8, 9]);
  assert.equal(parseLayers('7-5'), undefined);
  assert.equal(parseLayers('x'), undefined);
});

test('every magic has --help, captured instead of printed, and no process.exit', () => {
  for (const m of registry.all()) {
    const r = registry.parse(m, '--help');
    assert.equal(r.kind, 'help', m.name);
    assert.match(r.kind === 'help' ? r.text : '', new RegExp(`Usage: %{1,2}${m.name}`));
  }
});

test('bad arguments are UsageErrors naming the argument', () => {
  const ll = registry.get('logitlens', false)!;
  assert.throws(() => registry.parse(ll, '--bogus'), /%logitlens: unknown option '--bogus'/);
  assert.throws(() => registry.parse(ll, '--top-k abc'), /--top-k "abc" is not a non-negative integer/);
  assert.throws(() => registry.parse(ll, '--layers 9-2'), /--layers "9-2" is not a layer range/);
  assert.throws(() => registry.parse(ll, '--positions sideways'), /--positions <positions>' argument 'sideways' is invalid/);
  assert.throws(() => registry.parse(ll, '--as 3x'), /--as "3x" is not a variable name/);
  assert.throws(() => registry.parse(registry.get('load', false)!, ''), /missing required argument 'source'/);
  assert.throws(() => registry.parse(registry.get('load', false)!, 'a b'), /too many arguments/);
});

test('parsed options are fresh per call (commander keeps values on a reused command)', () => {
  const ll = registry.get('logitlens', false)!;
  const a = registry.parse(ll, '--top-k 3');
  const b = registry.parse(ll, '');
  assert.equal(a.kind === 'run' && a.opts.topK, 3);
  assert.equal(b.kind === 'run' && b.opts.topK, undefined);
});

interface Recorder {
  ctx: MagicContext;
  bound: Map<string, unknown>;
  sets: Record<string, unknown>[];
  created: Record<string, unknown>[];
  controller: AbortController;
}

function recorder(lib: Library = fake.contract): Recorder {
  const sets: Record<string, unknown>[] = [];
  const created: Record<string, unknown>[] = [];
  const controller = new AbortController();
  const w = {
    id: 'w1',
    isOpen: true,
    state: {},
    get: () => undefined,
    set(p: Record<string, unknown>) {
      sets.push(p);
      return this;
    },
    on: () => () => {},
    send: () => {},
    display: () => {},
    close: () => {},
  } as unknown as WidgetHandle;
  const widgets: WidgetsApi = {
    create: (o) => {
      created.push(o?.state ?? {});
      return w;
    },
    available: () => true,
    list: () => [w],
  };
  const { ctx, bound } = context({ lib: () => lib, signal: controller.signal, widgets });
  return { ctx, bound, sets, created, controller };
}

async function run(r: Recorder, line: string, body?: string) {
  const [name, ...rest] = line.split(' ');
  const m = registry.get(name, body !== undefined)!;
  const p = registry.parse(m, rest.join(' '));
  assert.equal(p.kind, 'run');
  return m.run(p as { opts: Record<string, unknown>; args: unknown[] }, r.ctx, body);
}

test('%load binds _ and --as and becomes the experiments model', async () => {
  const r = recorder();
  const out = await run(r, 'load teaching --as m');
  assert.equal(r.ctx.session.model, r.bound.get('m'));
  assert.equal(r.bound.get('_'), r.bound.get('m'));
  assert.match(String(out.bundle?.['text/plain']), /4 layers, 17 hook points/);
});

test('experiment magics build the spec from flags, validate it, stream into a widget and bind the result', async () => {
  const r = recorder();
  await run(r, 'load teaching');
  const dry = await run(r, 'knockout --layers 1-2 --window 9 --bands 0-1,2-3 --edges image->last,last->last --set a.b=3 --set name=x --dry-run');
  assert.deepEqual(dry.value, {
    kind: 'knockout',
    version: 1,
    layers: [1, 2],
    window: 9,
    bands: [
      [0, 1],
      [2, 3],
    ],
    edges: ['image->last', 'last->last'],
    a: { b: 3 },
    name: 'x',
  });
  const out = await run(r, 'crosspatch --layers 0-3 --as cp');
  const result = r.bound.get('cp') as { kind: string; summary: { layers: number } };
  assert.equal(result.kind, 'cross-patch');
  assert.equal(result.summary.layers, 4);
  assert.equal(out.show, false); // the widget shows it
  assert.equal(r.created.length, 1);
  const last = r.sets[r.sets.length - 1];
  assert.equal(last.view, 'probe-accuracy');
  assert.equal(last.progress, null);
  assert.ok((last.data as { image: Float32Array }).image instanceof Float32Array);
  // The widget waited in the kind's own view (the library's viewKindOf), not in a guess.
  assert.equal(r.created[0].view, 'probe-accuracy');
});

test('--compare VAR runs the same spec on a second model and draws both on one figure; a bad VAR fails before any run', async () => {
  const r = recorder();
  await run(r, 'load teaching --as early');
  await run(r, 'load teaching --as late');
  await assert.rejects(run(r, 'crosspatch --layers 0-3 --compare nope'), /--compare nope: no variable named nope/);
  assert.equal(r.created.length, 0, 'nothing ran');
  const out = await run(r, 'crosspatch --layers 0-3 --as cp --compare early');
  const first = r.bound.get('cp') as { kind: string; spec: unknown };
  const second = r.bound.get('cp_early') as { kind: string; spec: unknown };
  assert.equal(first.kind, 'cross-patch');
  assert.equal(second.kind, 'cross-patch');
  assert.notEqual(first, second);
  assert.deepEqual(second.spec, first.spec, 'the same validated spec');
  assert.equal(r.bound.get('_'), first, '_ is the first model\'s result');
  const last = r.sets[r.sets.length - 1];
  assert.equal(last.label, 'late', 'named by the last %load\'s --as');
  assert.deepEqual((last.compare as { label: string }[]).map((c) => c.label), ['early']);
  assert.equal(last.progress, null);
  assert.equal(last.error, null);
  assert.ok((out as { figure?: unknown }).figure, 'the figure --save writes');
  await run(r, 'crosspatch --layers 0-3 --compare late --model early');
  const labels = r.sets[r.sets.length - 1];
  assert.equal(labels.label, 'early');
  assert.deepEqual((labels.compare as { label: string }[]).map((c) => c.label), ['late']);
  assert.ok(r.bound.get('_late'), 'without --as the second result is _VAR');
});

test('a SpecError from validateSpec reaches the user with its path', async () => {
  const r = recorder();
  await run(r, 'load teaching');
  await assert.rejects(run(r, 'spec', '{"kind": "nope", "version": 1}'), (e: unknown) => (e as { path?: string }).path === 'kind');
  await assert.rejects(run(r, 'spec', '[1]'), /must be a JSON object/);
});

test('no model: the error says what to do', async () => {
  await assert.rejects(run(recorder(), 'probe'), /run %load <folder\|teaching> first/);
});

test('an abort mid-sweep keeps the finished rows in _ and --as, and raises KeyboardInterrupt', async () => {
  const r = recorder();
  await run(r, 'load teaching');
  setTimeout(() => r.controller.abort(new KernelInterrupt()), 120);
  await assert.rejects(run(r, 'freeze --layers 0-20 --set stepMs=30 --as fr'), (e: unknown) => e instanceof KernelInterrupt && /rows kept in _ and fr/.test((e as Error).message));
  const partial = r.bound.get('fr') as { summary: { interrupted: boolean; rows: number }; table: { numRows(): number } };
  assert.equal(partial.summary.interrupted, true);
  assert.ok(partial.summary.rows > 0 && partial.summary.rows < 21, `rows ${partial.summary.rows}`);
  assert.equal(partial.table.numRows(), partial.summary.rows);
  assert.match(String(r.sets[r.sets.length - 1].error), /interrupted/);
});

test('a clicked cell with no rows answers "no result" with the warnings, never "null"', async () => {
  const aq = await import('arquero');
  const empty = { kind: 'cross-patch', spec: {}, table: aq.table({ layer: [] as number[] }), summary: { answer: null, warnings: ['no identified pair at layer 3'] } };
  assert.equal(answerOf(empty as never), 'no result: the run produced no rows (no identified pair at layer 3)');
  const one = { ...empty, table: aq.table({ layer: [3] }), summary: { answer: 'switch at 3' } };
  assert.equal(answerOf(one as never), 'switch at 3');
});

test('a clicked view cell becomes a one-layer spec', () => {
  const spec = { kind: 'cross-patch', version: 1 as const, layers: [0, 1, 2], donors: 'same' };
  assert.deepEqual(oneCellSpec(spec, { type: 'run-cell', layer: 2, position: 5 }), { ...spec, layers: [2], positions: [5] });
  assert.throws(() => oneCellSpec(spec, { type: 'run-cell', layer: 'x' }), /not a layer index/);
});

test('against the real library: %logitlens streams partial logit-lens views that validate, then the final view', async () => {
  // The real src/index.ts and fixture A with synthetic prompts: the kernel's contract is the library's own.
  const real = (await import('../../src/index')) as unknown as Library;
  const { initEngine, shutdownEngine } = await import('../../src/engine/backend');
  const { validateViewState } = await import('../../src/report/views');
  const { loadFixture, syntheticPrompts } = await import('../experiments/fixture-data');
  await initEngine();
  const model = loadFixture('llava_tiny_A');
  try {
    const r = recorder(real);
    r.ctx.session.model = model as unknown as MagicContext['session']['model'];
    r.ctx.session.data = syntheticPrompts(['tok223 tok251', 'tok65 tok291', 'tok5 tok6']);
    await run(r, 'logitlens --layers 0-1 --top-k 2 --set batchSize=1 --as ll');
    assert.equal(r.created[0].view, 'logit-lens');
    const drawn = r.sets.filter((s) => s.view !== undefined);
    const live = drawn.filter((s) => s.progress !== null && (s.progress as { done: number; total: number }).done < (s.progress as { total: number }).total);
    assert.ok(live.length > 0, `no partial view while running (${r.sets.length} updates)`);
    for (const s of [...live, drawn[drawn.length - 1]]) {
      assert.equal(s.view, 'logit-lens');
      const check = validateViewState({ ...s, progress: s.progress ?? null, error: null });
      assert.ok(check.ok, check.ok ? '' : check.problems.join('; '));
    }
    assert.equal((r.bound.get('ll') as { kind: string }).kind, 'logit-lens');
  } finally {
    model.dispose();
    shutdownEngine();
  }
});
