// The recovery's cluster bootstrap (summary.recoveredCI) on rows built by hand, where every draw can be counted:
// two entities, so a draw holds A twice, both once, or B twice (1/4, 1/2, 1/4).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { recoveredBootstrap } from '../../src/experiments/recovery';
import type { Row } from '../../src/experiments/checkpoint';

const row = (entity: string, condition: string, correct: number, layer: number | null = null): Row => ({ entity, condition, correct, layer });

// Both entities: wrong from the image, right from the text. Patched at layer 3, A is right and B wrong (at layer 5 both
// right, which the interval must not read). The backbone knows A's two facts and one of B's two.
const rows: Row[] = [
  ...['A', 'B'].flatMap((e) => [row(e, 'image', 0), row(e, 'text', 1), row(e, 'patched', 1, 5)]),
  row('A', 'patched', 1, 3),
  row('B', 'patched', 0, 3),
  row('A', 'backbone', 1),
  row('A', 'backbone', 1),
  row('B', 'backbone', 1),
  row('B', 'backbone', 0),
];

test('recovered: entities resampled with their questions, at the chosen layer; the interval spans what the draws can give', () => {
  const ci = recoveredBootstrap(rows, 3, 4000, 1);
  assert.equal(ci.entities, 2);
  assert.equal(ci.layer, 3);
  // Draws give recovered 1 (A, A), 0.5 (A, B) or 0 (B, B): the 95 % interval is 0 to 1, at layer 5 it would be 1 to 1.
  assert.ok(ci.recovered.low === 0 && ci.recovered.high === 1, `recovered ${JSON.stringify(ci.recovered)}`);
  assert.deepEqual(recoveredBootstrap(rows, 5, 4000, 1).recovered, { low: 1, high: 1 });
  // Against the backbone: (patched − image) / (backbone − image) gives 1 (A, A), 0.5 / 0.75 (A, B), 0 / 0.5 (B, B).
  assert.ok(ci.recoveredOfBackbone.low === 0 && ci.recoveredOfBackbone.high === 1, `of the backbone ${JSON.stringify(ci.recoveredOfBackbone)}`);
  // Deterministic for a seed.
  assert.deepEqual(recoveredBootstrap(rows, 3, 4000, 1), ci);
});

test('a draw with no gap to recover has no share: it sorts past every number', () => {
  // B answers from the image as from the text: (A, A) gives 1, (A, B) gives (0.5 − 0.5) / (1 − 0.5) = 0, and a draw
  // of B alone has no gap (null), so the upper bound is null.
  const noGapB = rows.map((r) => (r.entity === 'B' && r.condition === 'image' ? { ...r, correct: 1 } : r));
  const ci = recoveredBootstrap(noGapB, 3, 4000, 1);
  assert.equal(ci.recovered.low, 0);
  assert.equal(ci.recovered.high, null);
});
