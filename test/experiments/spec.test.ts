// Experiment specs: every schema compiles, every example validates, defaults are filled, and an invalid
// spec fails with a SpecError whose message and path name the offending field.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { InputError, SpecError } from '../../src/errors';
import { selectRows } from '../../src/experiments/spec';
import { EXPERIMENT_KINDS, validateSpec } from '../../src/experiments/validate';

const EXAMPLES = path.resolve(__dirname, '../../examples/specs');

test('every kind validates with defaults filled in, and the result round-trips through JSON', () => {
  for (const kind of EXPERIMENT_KINDS) {
    const s = validateSpec({ kind, version: 1 });
    assert.equal(s.batchSize, 8, kind);
    assert.equal(s.match, 'popvqa', kind);
    assert.deepEqual(validateSpec(JSON.parse(JSON.stringify(s))), s, kind);
  }
});

test('the example specs validate', () => {
  const files = fs.readdirSync(EXAMPLES).filter((f) => f.endsWith('.json'));
  assert.ok(files.length >= EXPERIMENT_KINDS.length);
  for (const f of files) validateSpec(JSON.parse(fs.readFileSync(path.join(EXAMPLES, f), 'utf8')));
});

function fails(spec: unknown, field: string, message: RegExp): void {
  assert.throws(
    () => validateSpec(spec),
    (e: unknown) => {
      assert.ok(e instanceof SpecError, `expected SpecError, got ${String(e)}`);
      assert.equal(e.path, field);
      assert.match(e.message, message);
      return true;
    },
  );
}

test('invalid specs name the field', () => {
  fails({ kind: 'knockot', version: 1 }, 'kind', /not an experiment; use one of recall-gap/);
  fails({ kind: 'knockout', version: 2 }, 'version', /not supported/);
  fails({ kind: 'knockout', version: 1, window: 'x' }, 'window', /must be integer/);
  fails({ kind: 'knockout', version: 1, edges: ['image->last', 'image->lst'] }, 'edges[1]', /allowed: "image->last"/);
  fails({ kind: 'knockout', version: 1, bands: [[0, 9], [1]] }, 'bands[1]', /fewer than 2 items/);
  fails({ kind: 'probe', version: 1, threshold: 2 }, 'threshold', /must be <= 1/);
  fails({ kind: 'probe', version: 1, positon: 'last' }, 'positon', /not a field of this spec/);
  fails({ kind: 'cross-patch', version: 1, at: { kind: 'image', rows: [0] } }, 'at.rows', /fewer than 2 items/);
  fails({ kind: 'cross-patch', version: 1, layers: [3, -1] }, 'layers[1]', /must be >= 0/);
  fails({ kind: 'recall-gap', version: 1, match: 'fuzzy' }, 'match', /allowed: "popvqa", "alias"/);
  assert.throws(() => validateSpec([1]), /must be a JSON object/);
});

test('questions: a filter on questions.csv columns, for the kinds that ask factual questions', () => {
  for (const kind of EXPERIMENT_KINDS.filter((k) => k !== 'cross-patch')) {
    assert.equal(validateSpec({ kind, version: 1 }).questions, null, kind);
    const where = { vqa_split: 'heldout', relation: ['birth_city', 'country'] };
    assert.deepEqual(validateSpec({ kind, version: 1, questions: { where } }).questions, { where }, kind);
  }
  // cross-patch asks no factual question: the field would do nothing there.
  fails({ kind: 'cross-patch', version: 1, questions: { where: { vqa_split: 'heldout' } } }, 'questions', /not a field of this spec/);
  fails({ kind: 'recall-gap', version: 1, questions: 'heldout' }, 'questions', /must be object,null/);
  fails({ kind: 'recall-gap', version: 1, questions: {} }, 'questions.where', /is required/);
  fails({ kind: 'recall-gap', version: 1, questions: { where: {} } }, 'questions.where', /fewer than 1 properties/);
  fails({ kind: 'recall-gap', version: 1, questions: { where: { vqa_split: 3 } } }, 'questions.where.vqa_split', /must be string,array/);
  fails({ kind: 'recovery', version: 1, questions: { where: { vqa_split: [] } } }, 'questions.where.vqa_split', /fewer than 1 items/);
  fails({ kind: 'knockout', version: 1, questions: { where: { relation: ['a', 1] } } }, 'questions.where.relation[1]', /must be string/);
  fails({ kind: 'probe', version: 1, questions: { where: { vqa_split: 'heldout' }, limit: 2 } }, 'questions.limit', /not a field of this spec/);
});

test('rows select work items in the given order; a missing index names the kind and the items', () => {
  const items = ['a', 'b', 'c'];
  assert.deepEqual(selectRows({ kind: 'knockout', rows: null }, items, 'edge sets'), items);
  assert.deepEqual(selectRows({ kind: 'knockout', rows: [2, 0, 2] }, items, 'edge sets'), ['c', 'a', 'c']);
  assert.throws(
    () => selectRows({ kind: 'circuit', rows: [1, 3] }, items, 'clean/corrupt pairs'),
    (e: unknown) => e instanceof InputError && e.message === 'circuit: rows 3 does not exist (3 clean/corrupt pairs)',
  );
});
