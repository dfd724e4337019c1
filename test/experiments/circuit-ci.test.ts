// The circuit's bootstrap over pairs (summary.exact.recall.ci) on rows built by hand, where every draw's outcome
// can be counted: two pairs, so a draw holds pair 0 twice, both once, or pair 1 twice (1/4, 1/2, 1/4).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { exactComparison } from '../../src/experiments/circuit';
import type { Row } from '../../src/experiments/checkpoint';

const RECALL = { component: 'mlp_out', layer: 0, group: 'entity-last' };
const OTHER = { component: 'attn_out', layer: 1, group: 'last' };

/** Rows of one pair and run: the recall site's and another site's exact effect (estimates set apart from them). */
function rowsOf(pair: number, run: string, recall: number, other: number): Row[] {
  return [
    { pair, run, ...RECALL, score: recall + 0.5, exact: recall, reuse: null },
    { pair, run, ...OTHER, score: other + 0.5, exact: other, reuse: null },
  ];
}

// The backbone: the recall site decides (−10 against −1 in both pairs). The text run: the backbone's copy. The
// image run: −5 at the recall site in pair 0, 0 in pair 1, −1 elsewhere in both, so its recall site is its top 1
// when pair 0 is drawn at least once (means −5 or −2.5) and not when only pair 1 is (0 against −1): found in 3/4
// of the draws, and it carries 0.5, 0.25 or 0 of the backbone's effect.
const rows: Row[] = [0, 1].flatMap((p) => [
  ...rowsOf(p, 'backbone-text', -10, -1),
  ...rowsOf(p, 'vlm-text', -10, -1),
  ...rowsOf(p, 'vlm-image', p === 0 ? -5 : 0, -1),
]);

test('the recall bootstrap resamples pairs: found in the share of draws it should be, carried within its possible values', () => {
  const ex = exactComparison(rows, 1, 4000, 7)!;
  assert.deepEqual(ex.recall.layers, [0]);
  // The point estimates, on both pairs: the image run's mean there is −2.5, its top 1, carrying 0.25.
  assert.equal(ex.recall.found['vlm-image'], 1);
  assert.equal(ex.recall.carried['vlm-image'], 0.25);
  const ci = ex.recall.ci!;
  assert.equal(ci.resamples, 4000);
  const found = ci.found['vlm-image']!;
  assert.ok(Math.abs(found.agree - 0.75) < 0.03, `found in ${found.agree} of the draws, 0.75 expected`);
  assert.deepEqual([found.low, found.high], [0, 1]);
  const carried = ci.carried['vlm-image']!;
  assert.ok(carried.low === 0 && carried.high === 0.5, `carried ${carried.low}–${carried.high}, 0–0.5 expected`);
  // The text run is the backbone's copy in both pairs: every draw agrees, and it carries all of the effect.
  assert.deepEqual(ci.found['vlm-text'], { low: 1, high: 1, agree: 1 });
  assert.deepEqual(ci.carried['vlm-text'], { low: 1, high: 1 });
  // Deterministic for a seed; no draws, no interval.
  assert.deepEqual(exactComparison(rows, 1, 4000, 7)!.recall.ci, ci);
  assert.equal(exactComparison(rows, 1, 0)!.recall.ci, null);
});

test('no recall bootstrap without every site measured, or without a recall site among the backbone top k', () => {
  assert.equal(exactComparison(rows.map((r, i) => (i === 0 ? { ...r, exact: null } : r)), 1, 100), null);
  // k 1 on a backbone whose top site is elsewhere: no recall site, so nothing to resample.
  const elsewhere = rows.map((r) => (r.run === 'backbone-text' && r.component === 'attn_out' ? { ...r, exact: -20 } : r));
  const ex = exactComparison(elsewhere, 1, 100)!;
  assert.deepEqual(ex.recall.layers, []);
  assert.equal(ex.recall.ci, null);
});
