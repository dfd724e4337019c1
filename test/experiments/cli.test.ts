// `hopscope run SPEC.json --model DIR --data DIR --out DIR`: writes table.csv, table.arrow and summary.json;
// a second run in the same folder resumes from the checkpoint; a bad spec fails before loading anything.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as aq from 'arquero';
import { main } from '../../src/cli/main';
import { runSpecFile } from '../../src/cli/run';
import { shutdownEngine } from '../../src/engine/backend';
import { SpecError } from '../../src/errors';
import { FIXTURES, syntheticPrompts } from './fixture-data';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'hopscope-cli-'));
after(() => {
  shutdownEngine();
  fs.rmSync(tmp, { recursive: true, force: true });
});

const dataDir = path.join(tmp, 'data');
fs.mkdirSync(dataDir);
fs.writeFileSync(path.join(dataDir, 'prompts.json'), JSON.stringify(syntheticPrompts()));
const specFile = path.join(tmp, 'spec.json');
fs.writeFileSync(specFile, JSON.stringify({ kind: 'knockout', version: 1, identifiedOnly: false, limit: 1, window: 3, maxNewTokens: 2 }));
const model = path.join(FIXTURES, 'llava_tiny_A');

test('hopscope run writes CSV, Arrow and summary.json; a rerun resumes from the checkpoint', async () => {
  const out = path.join(tmp, 'out');
  const code = await main(['run', specFile, '--model', model, '--data', dataDir, '--out', out, '--no-progress']);
  assert.equal(code, 0);
  for (const f of ['table.csv', 'table.arrow', 'summary.json', 'rows.jsonl', 'spec.json']) assert.ok(fs.existsSync(path.join(out, f)), f);
  const summary = JSON.parse(fs.readFileSync(path.join(out, 'summary.json'), 'utf8'));
  assert.equal(summary.kind, 'knockout');
  const arrow = aq.fromArrow(fs.readFileSync(path.join(out, 'table.arrow')));
  assert.equal(arrow.numRows(), summary.rows);
  assert.equal(fs.readFileSync(path.join(out, 'table.csv'), 'utf8').trim().split('\n').length, summary.rows + 1);
  const before = fs.readFileSync(path.join(out, 'rows.jsonl'), 'utf8');
  await runSpecFile(specFile, { model, data: dataDir, out, progress: false });
  assert.equal(fs.readFileSync(path.join(out, 'rows.jsonl'), 'utf8'), before, 'nothing recomputed');
  assert.equal(fs.readFileSync(path.join(out, 'table.csv'), 'utf8').trim().split('\n').length, summary.rows + 1);
});

test('an invalid spec fails with the field named, before the model loads', async () => {
  const bad = path.join(tmp, 'bad.json');
  fs.writeFileSync(bad, JSON.stringify({ kind: 'knockout', version: 1, window: 0 }));
  await assert.rejects(runSpecFile(bad, { model: '/nonexistent', out: path.join(tmp, 'x') }), (e: unknown) => e instanceof SpecError && e.path === 'window');
});
