// Wilcoxon signed-rank, accuracy aggregation and CIs against values from scipy's documentation and
// values worked out by hand (the working is in the comments).
import { strict as assert } from 'node:assert';
import { test } from 'node:test';
import { bootstrapWeights, compareConditions, erfc, meanCI, normalCdf, normalQuantile, proportionCI, summarizeAccuracy, weightedMean, wilcoxonSignedRank } from '../../src/data/stats';
import { gapSummary, type AnswerRow } from '../../src/experiments/recall-gap';

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
  const r = wilcoxonSignedRank(D, undefined, { method: 'approx' });
  assert.equal(r.method, 'approx');
  assert.equal(r.correction, false);
  close(r.pValue, 0.04088813291185591);
  // With the continuity correction: z = (24 − 60 + 0.5) / sqrt(15·16·31/24) = −35.5 / sqrt(310);
  // scipy wilcoxon(d, method='approx', correction=True) -> 0.043772323763041174.
  const c = wilcoxonSignedRank(D, undefined, { method: 'approx', correction: true });
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
  // mean = 7·8/4 = 14; var = 7·8·15/24 − (6+6)/48 = 34.75; z = (7.5 − 14 + 0.5)/sqrt(34.75) with the correction.
  const r = wilcoxonSignedRank([1, -1, 2, 0, 3, 3, -4, 0, 5], undefined, { method: 'approx', correction: true });
  assert.equal(r.n, 7);
  assert.equal(r.nZero, 2);
  assert.equal(r.ties, true);
  assert.equal(r.method, 'approx');
  assert.equal(r.wPlus, 20.5);
  assert.equal(r.wMinus, 7.5);
  close(r.z!, -6 / Math.sqrt(34.75));
  close(r.pValue, 0.3087603135275325);
});

test('wilcoxon: small exact cases by counting subsets', () => {
  // n = 5, all positive: only the empty subset has W− = 0, so p = 2/32 (scipy: 0.0625).
  assert.equal(wilcoxonSignedRank([1, 2, 3, 4, 5]).pValue, 0.0625);
  // [1, 2, −3]: W− = 3; subsets of {1,2,3} with sum ≤ 3: {}, {1}, {2}, {3}, {1,2} -> 5/8; p = min(1, 10/8).
  assert.equal(wilcoxonSignedRank([1, 2, -3]).pValue, 1);
  assert.ok(Number.isNaN(wilcoxonSignedRank([0, 0, 0], undefined).pValue));
});

/*
 * scipy.stats.wilcoxon(d) with its defaults (zero_method='wilcox', correction=False, method='auto',
 * two-sided), as scipy/stats/_wilcoxon.py (scipy main, _wilcoxon_iv / _wilcoxon_nd) decides: more than 50
 * pairs (zeros included) -> normal approximation; else no ties and no zeros -> exact distribution; else
 * n ≤ 13 -> exact permutation test over the 2^n sign flips; else normal approximation.
 * scipy cannot run here (no PyPI). The expected values were computed with a separate stdlib-only Python
 * script written for this test from that source (exact rational arithmetic with fractions.Fraction;
 * the exact case counts the subsets of small ranks with sum ≤ W by itertools.combinations, the
 * permutation case enumerates itertools.product over signs, the approximation uses math.erfc on
 * z = (W+ − n(n+1)/4)/sqrt((n(n+1)(2n+1) − Σ(t³−t)/2)/24)). It reproduces scipy's documented example
 * (0.041259765625, above). The analytic ones are checked by hand in the comments.
 */
const SCIPY_CASES: { name: string; d: number[]; method: string; statistic: number; p: number }[] = [
  // ties and zeros, 9 pairs: permutation (2^7 sign flips of ranks 1.5,1.5,3,4.5,4.5,6,7).
  { name: 'ties+zeros n=9', d: [1, -1, 2, 0, 3, 3, -4, 0, 5], method: 'permutation', statistic: 7.5, p: 0.34375 },
  // n = 9, W− = 4: subsets of {1..9} with sum ≤ 4: {},{1},{2},{3},{4},{1,2},{1,3} = 7 -> p = 14/512.
  { name: 'n=9 exact', d: [1, 2, 3, -4, 5, 6, 7, 8, 9], method: 'exact', statistic: 4, p: 14 / 512 },
  // n = 30, ranks 1, 2, 4 negative: W− = 7; subsets of {1..7} with sum ≤ 7: 1 + 7 + 9 + 2 (sizes 0, 1, 2, 3) = 19 -> p = 38/2^30.
  { name: 'n=30 exact', d: Array.from({ length: 30 }, (_, i) => ([1, 2, 4].includes(i + 1) ? -(i + 1) : i + 1)), method: 'exact', statistic: 7, p: 38 / 2 ** 30 },
  {
    name: 'n=30 quarters, ties and zeros',
    d: [4, 3, 3, 4, 2, 3, 4, 1, 0, 1, 1, 4, 4, 0, 2, 4, 0, 3, 0, 2, 4, 1, 1, 1, 3, 1, 4, 2, 2, 2].map((t, i) => (t - [3, 2, 2, 2, 0, 1, 3, 0, 0, 0, 1, 4, 2, 1, 0, 3, 1, 4, 0, 3, 4, 0, 0, 1, 1, 0, 2, 1, 2, 1][i]) / 4),
    method: 'approx',
    statistic: 34,
    p: 0.0009429833228460668,
  },
  { name: 'n=14 zeros', d: [0, 1, 2, 3, 4, 5, 6, 7, -8, 9, 10, 11, 12, -13], method: 'approx', statistic: 21, p: 0.0868600815162408 },
  { name: 'n=60 no ties', d: Array.from({ length: 60 }, (_, i) => ((i + 1) % 3 ? i + 1 : -(i + 1))), method: 'approx', statistic: 630, p: 0.03590012321587814 },
  { name: 'n=60 ties and zeros', d: Array.from({ length: 60 }, (_, k) => ((k % 7) - 2) / 4), method: 'approx', statistic: 328.5, p: 0.0015264799104482212 },
];

test('wilcoxon: equals scipy.stats.wilcoxon defaults within 1e-12 (exact, permutation, approximation)', () => {
  assert.equal(SCIPY_CASES.length >= 6, true);
  for (const c of SCIPY_CASES) {
    const r = wilcoxonSignedRank(c.d);
    assert.equal(r.method, c.method, c.name);
    assert.equal(r.correction, false, c.name);
    assert.equal(r.statistic, c.statistic, c.name);
    assert.ok(Math.abs(r.pValue - c.p) <= 1e-12, `${c.name}: ${r.pValue} vs ${c.p}`);
  }
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

test("proportionCI: Wilson's score interval, inside [0, 1] and never a point", () => {
  // statsmodels proportion_confint(7, 10, method='wilson') = (0.39678, 0.89221); 6 of 6: (0.60967, 1).
  const seven = proportionCI([1, 0, 1, 0, 1, 1, 0, 1, 1, 1]);
  close(seven.lo, 0.39678, 1e-5);
  close(seven.hi, 0.89221, 1e-5);
  const all = proportionCI([1, 1, 1, 1, 1, 1]);
  close(all.lo, 0.60967, 1e-5);
  assert.equal(all.hi, 1);
  const none = proportionCI([0, 0, 0]);
  assert.equal(none.lo, 0);
  assert.ok(none.hi > 0.5 && none.hi < 0.6, String(none.hi));
  // Per-entity means of several answers: the same formula on their mean.
  const frac = proportionCI([0.5, 1, 0.75, 1]);
  assert.ok(frac.lo > 0 && frac.lo < frac.mean && frac.mean < frac.hi && frac.hi <= 1);
  assert.ok(Number.isNaN(proportionCI([]).lo));
  assert.throws(() => proportionCI([1], 1), /level must be in \(0, 1\)/);
});

test('recall-gap: each accuracy carries a Wilson interval (six entities all right: 61–100 %, not 100–100 %; five of six: not past 100 %)', () => {
  const row = (entity: string, condition: 'text' | 'image', ok: boolean): AnswerRow => ({ entity, subject: entity, type: 'celebs', condition, relation: 'r', question: 'q', generation: '', correct: ok, correctPopvqa: ok, correctAlias: ok });
  const es = ['a', 'b', 'c', 'd', 'e', 'f'];
  const g = gapSummary([...es.map((e) => row(e, 'text', true)), ...es.map((e, i) => row(e, 'image', i > 0))], 'popvqa');
  const [r] = g.view.rows;
  close(r.textCI[0], 0.60967, 1e-5);
  assert.equal(r.textCI[1], 1);
  close(r.imageAcc, 5 / 6);
  assert.ok(r.imageCI[1] < 1 && r.imageCI[0] > 0.4, JSON.stringify(r.imageCI));
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

test('bootstrapWeights: each draw picks n units with replacement (weights sum to n), deterministic by seed, every unit drawn about once', () => {
  const draws = [...bootstrapWeights(5, 2000, 3)].length;
  assert.equal(draws, 2000);
  const copy = (seed: number) => Array.from(bootstrapWeights(5, 50, seed), (w) => Array.from(w));
  assert.deepEqual(copy(3), copy(3));
  assert.notDeepEqual(copy(3), copy(4));
  const total = new Float64Array(5);
  for (const w of bootstrapWeights(5, 2000, 3)) {
    assert.equal(w.reduce((a, b) => a + b, 0), 5);
    w.forEach((v, i) => (total[i] += v));
  }
  // Each unit is drawn once per draw on average: 2000 ± a few percent.
  for (const t of total) assert.ok(Math.abs(t / 2000 - 1) < 0.06, `unit drawn ${t} times in 2000 draws`);
});

test('weightedMean: units without a weight or a value are left out; none left gives NaN', () => {
  assert.equal(weightedMean([1, 2, NaN, 10], [2, 1, 5, 0]), (2 * 1 + 1 * 2) / 3);
  assert.ok(Number.isNaN(weightedMean([NaN, 4], [1, 0])));
  assert.ok(Number.isNaN(weightedMean([], [])));
});
