// Wilcoxon signed-rank, accuracy aggregation and CIs against values from scipy's documentation and
// values worked out by hand (the working is in the comments).
import { strict as assert } from 'node:assert';
import { test } from 'node:test';
import { compareConditions, erfc, meanCI, normalCdf, normalQuantile, summarizeAccuracy, wilcoxonSignedRank } from '../../src/data/stats';

const close = (a: number, b: number, tol = 1e-12) => assert.ok(Math.abs(a - b) <= tol * Math.max(1, Math.abs(b)), `${a} ≠ ${b}`);

// scipy.stats.wilcoxon documentation example (differences in height of 15 pairs of plants).
const D = [6, 8, 14, 16, 23, 24, 28, 29, 41, -48, 49, 56, 60, -67, 75];

test('wilcoxon: scipy doc example, exact distribution', () => {
  // scipy: wilcoxon(d) -> WilcoxonResult(statistic=24.0, pvalue=0.041259765625)
  const r = wilcoxonSignedRank(D);
  assert.equal(r.method, 'exact');
  assert.equal(r.statistic, 24);
  assert.equal(r.wPlus, 96);
  assert.equal(r.wMinus, 24);
  assert.equal(r.pValue, 0.041259765625);
});

test('wilcoxon: scipy doc example, normal approximation', () => {
  // scipy: wilcoxon(d, method='approx') -> pvalue=0.04088813291185591 (no continuity correction)
  const r = wilcoxonSignedRank(D, undefined, { method: 'approx', correction: false });
  assert.equal(r.method, 'approx');
  close(r.pValue, 0.04088813291185591);
  // With the continuity correction: z = (24 − 60 + 0.5) / sqrt(15·16·31/24) = −35.5 / sqrt(310);
  // scipy wilcoxon(d, method='approx', correction=True) -> 0.043772323763041174.
  const c = wilcoxonSignedRank(D, undefined, { method: 'approx' });
  close(c.z!, -35.5 / Math.sqrt(310));
  close(c.pValue, 0.043772323763041174);
});

test('wilcoxon: paired form equals the one-sample form on x − y', () => {
  const y = D.map((_, i) => 100 + i);
  const x = D.map((d, i) => y[i] + d);
  assert.deepEqual(wilcoxonSignedRank(x, y), wilcoxonSignedRank(D));
});

test('wilcoxon: zeros dropped, ties averaged, tie-corrected variance (by hand)', () => {
  // d = [1, −1, 2, 0, 3, 3, −4, 0, 5]: drop the two zeros, n = 7. |d| ranks: 1,1 -> 1.5; 2 -> 3;
  // 3,3 -> 4.5; 4 -> 6; 5 -> 7. W+ = 1.5+3+4.5+4.5+7 = 20.5, W− = 1.5+6 = 7.5.
  // mean = 7·8/4 = 14; var = 7·8·15/24 − (6+6)/48 = 34.75; z = (7.5 − 14 + 0.5)/sqrt(34.75).
  // scipy (zero_method='wilcox', correction=True, method='approx'): pvalue 0.3087603135275325.
  const r = wilcoxonSignedRank([1, -1, 2, 0, 3, 3, -4, 0, 5]);
  assert.equal(r.n, 7);
  assert.equal(r.nZero, 2);
  assert.equal(r.ties, true);
  assert.equal(r.method, 'approx');
  assert.equal(r.wPlus, 20.5);
  assert.equal(r.wMinus, 7.5);
  close(r.z!, -6 / Math.sqrt(34.75));
  close(r.pValue, 0.3087603135275325);
  assert.throws(() => wilcoxonSignedRank([1, -1, 2, 3, 3], undefined, { method: 'exact' }), /untied/);
});

test('wilcoxon: small exact cases by counting subsets', () => {
  // n = 5, all positive: only the empty subset has W− = 0, so p = 2/32 (scipy: 0.0625).
  assert.equal(wilcoxonSignedRank([1, 2, 3, 4, 5]).pValue, 0.0625);
  // [1, 2, −3]: W− = 3; subsets of {1,2,3} with sum ≤ 3: {}, {1}, {2}, {3}, {1,2} -> 5/8; p = min(1, 10/8).
  assert.equal(wilcoxonSignedRank([1, 2, -3]).pValue, 1);
  assert.ok(Number.isNaN(wilcoxonSignedRank([0, 0, 0], undefined).pValue));
});

test('wilcoxon: per-entity accuracies in quarters (ties, zeros, n > 25) match scipy', () => {
  const t = [4, 3, 3, 4, 2, 3, 4, 1, 0, 1, 1, 4, 4, 0, 2, 4, 0, 3, 0, 2, 4, 1, 1, 1, 3, 1, 4, 2, 2, 2].map((v) => v / 4);
  const i = [3, 2, 2, 2, 0, 1, 3, 0, 0, 0, 1, 4, 2, 1, 0, 3, 1, 4, 0, 3, 4, 0, 0, 1, 1, 0, 2, 1, 2, 1].map((v) => v / 4);
  // scipy: wilcoxon(t/4, i/4, zero_method='wilcox', correction=True, method='approx') -> (34.0, 0.0009979340489083618)
  const r = wilcoxonSignedRank(t, i);
  assert.equal(r.statistic, 34);
  close(r.pValue, 0.0009979340489083618, 1e-10);
  // ... and correction=False -> 0.0009429833228460645
  close(wilcoxonSignedRank(t, i, { correction: false }).pValue, 0.0009429833228460645, 1e-10);
});

test('wilcoxon: float noise in per-entity means does not break ties', () => {
  // 2/3 − 1 and 1/3 − 2/3 differ in the last bit; they are the same difference.
  const r = wilcoxonSignedRank([2 / 3, 1 / 3, 1, 1], [1, 2 / 3, 0, 0]);
  assert.equal(r.ties, true);
  assert.equal(r.wMinus, 3); // both −1/3 share ranks 1 and 2
});

test('normal distribution helpers', () => {
  close(erfc(0.5), 0.4795001221869535, 1e-14);
  close(erfc(3), 2.2090496998585438e-5, 1e-13);
  close(erfc(-1), 2 - 0.15729920705028513, 1e-14);
  assert.equal(normalCdf(0), 0.5);
  close(normalQuantile(0.975), 1.959963984540054, 1e-12);
  close(normalQuantile(0.001), -3.090232306167813, 1e-12);
});

test('accuracy: per entity, then mean over entities, and per type', () => {
  const s = summarizeAccuracy([
    { entity: 'e1', type: 'celebs', correct: true },
    { entity: 'e1', type: 'celebs', correct: false },
    { entity: 'e2', type: 'celebs', correct: true },
    { entity: 'e2', type: 'celebs', correct: true },
    { entity: 'e2', type: 'celebs', correct: true },
    { entity: 'e3', type: 'brands', correct: false },
  ]);
  // per entity 0.5, 1, 0 -> overall 0.5 (not 4/6); celebs (0.5 + 1)/2; brands 0.
  assert.equal(s.mean, 0.5);
  assert.equal(s.nEntities, 3);
  assert.equal(s.nAnswers, 6);
  assert.deepEqual(s.byType, { celebs: { mean: 0.75, nEntities: 2, nAnswers: 5 }, brands: { mean: 0, nEntities: 1, nAnswers: 1 } });
});

test('compareConditions pairs entities present in both conditions', () => {
  const text = ['a', 'b', 'c', 'd'].map((entity, k) => ({ entity, type: k < 2 ? 'celebs' : 'brands', correct: true }));
  const image = [
    { entity: 'a', type: 'celebs', correct: false },
    { entity: 'b', type: 'celebs', correct: true },
    { entity: 'c', type: 'brands', correct: false },
    { entity: 'x', type: 'brands', correct: false },
  ];
  const c = compareConditions(text, image);
  assert.deepEqual(c.entities, ['a', 'b', 'c']);
  assert.equal(c.text.mean, 1);
  close(c.image.mean, 1 / 3);
  close(c.drop.mean, 2 / 3);
  assert.equal(c.wilcoxon.n, 2);
  assert.equal(c.byType.celebs.drop.mean, 0.5);
  assert.equal(c.byType.brands.text.nEntities, 1);
});

test('meanCI: normal interval by hand, bootstrap deterministic by seed', () => {
  // [0, 1, 1, 1]: mean 0.75, s = 0.5, half-width 1.959963984540054 · 0.5 / 2.
  const n = meanCI([0, 1, 1, 1]);
  close(n.lo, 0.75 - 1.959963984540054 * 0.25, 1e-12);
  close(n.hi, 0.75 + 1.959963984540054 * 0.25, 1e-12);
  const values = [0.1, 0.5, 0.2, 0.9, 0.4, 0.3, 0.8, 0.6];
  const b1 = meanCI(values, { method: 'bootstrap', seed: 3 });
  assert.deepEqual(meanCI(values, { method: 'bootstrap', seed: 3 }), b1);
  assert.ok(b1.lo < b1.mean && b1.mean < b1.hi);
  const k = meanCI([0.4, 0.4, 0.4], { method: 'bootstrap' });
  close(k.lo, 0.4);
  close(k.hi, 0.4);
  assert.ok(Number.isNaN(meanCI([1]).lo));
});
