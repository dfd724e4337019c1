// The worked example of docs/adding-an-experiment.md: a toy kind from one definition (examples/experiment-kind/
// last-token-lens.ts) plus one schema, registered once, runs from the library, the CLI (`hopscope run`) and a
// kernel magic, draws its view live, and its TypeScript spec matches its schema (compile time, below).
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, test } from 'node:test';
import { lastTokenLens, type LastTokenLensSpec } from '../../examples/experiment-kind/last-token-lens';
import type schemaJson from '../../examples/experiment-kind/last-token-lens.json';
import { defaultMagics } from '../../kernel/magics';
import type { Library } from '../../kernel/library';
import type { MagicContext } from '../../kernel/magics/registry';
import { runSpecFile } from '../../src/cli/run';
import { initEngine, shutdownEngine } from '../../src/engine/backend';
import { experimentKinds, registerExperiment, runExperiment, unregisterExperiment, validateSpec, viewFromResult } from '../../src/experiments';
import type { Model } from '../../src/models/model';
import { validateViewState } from '../../src/report/views';
import { FIXTURES, loadFixture, syntheticPrompts } from './fixture-data';
import type { SchemaKeysMatch } from './schema-keys';

// The spec interface and the schema name the same fields (a field added to one and not the other fails tsc).
const keysMatch: SchemaKeysMatch<LastTokenLensSpec, typeof schemaJson> = true;

let model: Model;
const data = syntheticPrompts(['tok223 tok251', 'tok65 tok291', 'tok5 tok6']);

before(async () => {
  await initEngine();
  registerExperiment(lastTokenLens);
  model = loadFixture('llava_tiny_A');
});
after(() => {
  model.dispose();
  unregisterExperiment('last-token-lens');
  shutdownEngine();
});

test('registered from one definition: validated against its schema, listed with the kinds', () => {
  assert.ok(keysMatch);
  assert.ok(experimentKinds().includes('last-token-lens'));
  assert.deepEqual(validateSpec({ kind: 'last-token-lens', version: 1 }), {
    kind: 'last-token-lens', version: 1, limit: null, types: null, seed: 0, batchSize: 8, template: null, match: 'popvqa', strict: false, rows: null, layers: null, topK: 3,
  });
  assert.throws(() => validateSpec({ kind: 'last-token-lens', version: 1, topK: 0 }), /last-token-lens spec: field "topK" must be >= 1/);
  assert.throws(() => registerExperiment(lastTokenLens), /already registered/);
});

test('from the library: rows per prompt, layer and rank, and a logit-lens view', async () => {
  const partial: unknown[] = [];
  const r = await runExperiment({ kind: 'last-token-lens', version: 1, layers: [0, 3], topK: 2, batchSize: 1 }, { model, data, onPartial: (rows) => partial.push(...rows) });
  assert.ok((r.summary.prompts as number) > 1);
  assert.equal(r.table.numRows(), (r.summary.prompts as number) * 2 * 2);
  assert.equal(partial.length, r.table.numRows());
  const v = viewFromResult(r);
  assert.equal(v.view, 'logit-lens');
  const check = validateViewState({ ...v, progress: null, error: null });
  assert.ok(check.ok, check.ok ? '' : check.problems.join('; '));
});

test('from the CLI: hopscope run with a spec file writes the table and summary', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hopscope-toy-'));
  try {
    fs.writeFileSync(path.join(dir, 'spec.json'), JSON.stringify({ kind: 'last-token-lens', version: 1, layers: [1], topK: 1 }));
    fs.writeFileSync(path.join(dir, 'prompts.json'), JSON.stringify(data));
    const out = path.join(dir, 'out');
    const files = await runSpecFile(path.join(dir, 'spec.json'), { model: path.join(FIXTURES, 'llava_tiny_A'), data: dir, out, progress: false });
    const summary = JSON.parse(fs.readFileSync(files.summary, 'utf8'));
    assert.equal(summary.kind, 'last-token-lens');
    assert.equal(summary.rows, summary.summary.prompts);
    assert.deepEqual(summary.summary.layers, [1]);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('from a magic: %lasttokenlens with flags derived from the schema, drawn in a widget', async () => {
  const registry = defaultMagics();
  const magic = registry.get('lasttokenlens', false);
  assert.ok(magic, 'no %lasttokenlens magic');
  assert.match(registry.help(magic), /--top-k <top-k>\s+Tokens read per layer/);
  const parsed = registry.parse(magic, '--layers 2 --top-k 2 --as t');
  assert.equal(parsed.kind, 'run');
  const lib = (await import('../../src/index')) as unknown as Library;
  const sets: Record<string, unknown>[] = [];
  const bound = new Map<string, unknown>();
  const widget = { set: (p: Record<string, unknown>) => (sets.push(p), widget), display: () => {}, on: () => () => {}, send: () => {} };
  const ctx = {
    lib: () => lib,
    signal: new AbortController().signal,
    hardStop: new Promise<never>(() => {}),
    session: { model, modelSource: 'fixture', data, datasets: new Map() },
    widgets: { create: () => widget, available: () => true, list: () => [] },
    stdout: () => {},
    display: () => {},
    keep: async (v: unknown, as?: string) => {
      bound.set('_', v);
      if (as) bound.set(as, v);
    },
    lookup: (n: string) => bound.get(n),
    background: () => {},
    registry,
  } as unknown as MagicContext;
  await magic.run(parsed as { opts: Record<string, unknown>; args: unknown[] }, ctx, undefined);
  const result = bound.get('t') as { kind: string; spec: { topK: number; layers: number[] } };
  assert.equal(result.kind, 'last-token-lens');
  assert.equal(result.spec.topK, 2);
  assert.deepEqual(result.spec.layers, [2]);
  assert.equal(sets[sets.length - 1].view, 'logit-lens');
});
