// The resolution rule (one for the probe, its views and the widgets) and its cluster bootstrap.
import assert from 'node:assert/strict';
import test from 'node:test';
import { formatInterval, resolutionIndex, resolutionLayer } from '../../src/experiments/resolution';
import { bootstrapResolution, type Hits } from '../../src/experiments/resolution-ci';

test('resolution rule: an accuracy threshold, or a share of the curve\'s own best; none on an empty or flat-zero curve', () => {
  const curve = [0.1, 0.16, 0.15, 0.18, 0.12];
  assert.equal(resolutionIndex(curve, { threshold: 0.5, thresholdOf: 'accuracy' }), null);
  assert.equal(resolutionIndex(curve, { threshold: 0.15, thresholdOf: 'accuracy' }), 1);
  // 90 % of the best (0.18) is 0.162: layer 3, though layer 1 is 0.16. The flat-curve fragility the CI shows.
  assert.equal(resolutionIndex(curve, { threshold: 0.9, thresholdOf: 'peak' }), 3);
  assert.equal(resolutionIndex(curve, { threshold: 0.85, thresholdOf: 'peak' }), 1);
  assert.equal(resolutionIndex([NaN, 0.4, 0.8], { threshold: 0.9, thresholdOf: 'peak' }), 2);
  assert.equal(resolutionIndex([0, 0, 0], { threshold: 0.9, thresholdOf: 'peak' }), null);
  assert.equal(resolutionIndex([], { threshold: 0.5, thresholdOf: 'accuracy' }), null);
  assert.equal(resolutionLayer([4, 8, 12], [0.2, 0.6, 0.9], { threshold: 0.5 }), 8, 'accuracy is the default');
  assert.equal(resolutionLayer([4, 8, 12], [0.2, 0.6, 0.9], { threshold: null }), null);
  assert.equal(resolutionLayer([4, 8, 12], null, { threshold: 0.5 }), null);
});

/** `n` entities with `per` examples each; an entity's example is hit from layer `from(entity)` on. */
function stepHits(n: number, per: number, layers: number, from: (e: number) => number): Hits {
  const entity: string[] = [];
  for (let e = 0; e < n; e++) for (let k = 0; k < per; k++) entity.push(`e${e}`);
  const hits = Array.from({ length: layers }, (_, l) => Uint8Array.from(entity, (name) => (l >= from(Number(name.slice(1))) ? 1 : 0)));
  return { entity, hits };
}

test('bootstrap: a sharp step gives a one-layer interval that every draw agrees on, and the lag behind the text, paired', () => {
  const text = stepHits(20, 2, 6, () => 0);
  const image = stepHits(20, 3, 6, () => 2);
  const layers = [0, 1, 2, 3, 4, 5];
  const b = bootstrapResolution({ text, image }, layers, { threshold: 0.5, thresholdOf: 'accuracy' }, 200, 1, 'text');
  assert.ok(b);
  assert.deepEqual(b.layer.text, { low: 0, high: 0, agree: 1 });
  assert.deepEqual(b.layer.image, { low: 2, high: 2, agree: 1 });
  assert.deepEqual(b.lag.image, { low: 2, high: 2, agree: 1 });
  assert.equal(b.reference, 'text');
  assert.deepEqual(Object.keys(b.lag), ['image'], 'no lag of the reference behind itself');
});

test('bootstrap: a flat curve over mixed entities gives a wide interval; the same seed the same interval', () => {
  // Half the entities resolve at layer 1, half at 4: accuracy 0.5 from layer 1 to 3, then 1. At threshold 0.5 the
  // layer is 1 or 4 depending on which half a draw holds more of.
  const image = stepHits(24, 2, 6, (e) => (e % 2 ? 1 : 4));
  const layers = [0, 1, 2, 3, 4, 5];
  const rule = { threshold: 0.5, thresholdOf: 'accuracy' as const };
  const b = bootstrapResolution({ image }, layers, rule, 400, 7);
  assert.ok(b);
  assert.equal(b.layer.image.low, 1);
  assert.equal(b.layer.image.high, 4);
  assert.ok(b.layer.image.agree > 0.2 && b.layer.image.agree < 0.8, String(b.layer.image.agree));
  assert.deepEqual(bootstrapResolution({ image }, layers, rule, 400, 7), b);
  assert.deepEqual(b.lag, {}, 'no reference, no lag');
});

test('bootstrap: a curve that never resolves gives null bounds; none without draws or examples', () => {
  const never = stepHits(10, 1, 3, () => 99);
  const b = bootstrapResolution({ never }, [0, 1, 2], { threshold: 0.5, thresholdOf: 'accuracy' }, 50, 0);
  assert.deepEqual(b?.layer.never, { low: null, high: null, agree: 1 });
  assert.equal(bootstrapResolution({ never }, [0, 1, 2], { threshold: 0.5, thresholdOf: 'accuracy' }, 0, 0), null);
  assert.equal(bootstrapResolution({ none: { entity: [], hits: [] } }, [0], { threshold: 0.5, thresholdOf: 'accuracy' }, 10, 0), null);
});

test('an interval as a label: one layer, a range, and draws that never resolve', () => {
  assert.equal(formatInterval({ low: 7, high: 7, agree: 1 }), '7');
  assert.equal(formatInterval({ low: 1, high: 5, agree: 0.5 }, 'L'), 'L1–L5');
  assert.equal(formatInterval({ low: 1, high: null, agree: 0.5 }, 'L'), 'L1–never');
  assert.equal(formatInterval({ low: null, high: null, agree: 1 }), 'never');
});
