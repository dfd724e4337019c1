// View-state schemas: every synthetic state validates, wire forms decode to the same numbers, bad states give
// readable problems (no browser needed).

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { computeSwitchLayer, pngSize, validateViewState, VIEW_KINDS } from '../../src/report/views';
import { allViewStates, badViewStates, comparedViewStates, picture, probeAccuracyState } from './fixtures';

test('every synthetic view state validates', () => {
  const states = allViewStates();
  assert.deepEqual(states.map((s) => s.view).sort(), [...VIEW_KINDS].sort());
  for (const s of states) {
    const r = validateViewState(s);
    assert.ok(r.ok, `${s.view}: ${r.ok ? '' : r.problems.join('; ')}`);
  }
});

test('JSON lists, typed arrays, DataViews and {dtype, shape, buffer} decode alike', () => {
  const values = [0.25, 0.5, NaN, 1];
  const f32 = Float32Array.from(values);
  const f64 = Float64Array.from(values);
  // A DataView at an unaligned offset, as a buffer sliced out of a message frame arrives.
  const frame = new ArrayBuffer(f32.byteLength + 3);
  new Uint8Array(frame).set(new Uint8Array(f32.buffer), 3);
  const forms: unknown[] = [
    [0.25, 0.5, null, 1],
    f32,
    new DataView(frame, 3, f32.byteLength),
    { dtype: 'float64', shape: [4], buffer: new DataView(f64.buffer) },
  ];
  for (const form of forms) {
    const r = validateViewState({ view: 'probe-accuracy', data: { layers: [0, 1, 2, 3], image: form } });
    assert.ok(r.ok, r.ok ? '' : r.problems.join('; '));
    if (r.ok && r.state.view === 'probe-accuracy') {
      const got = r.state.data.image;
      assert.deepEqual(got?.map((x) => (Number.isNaN(x) ? null : x)), [0.25, 0.5, null, 1]);
    }
  }
});

test('probe-accuracy: a probe of one modality validates without the other curve; with neither the state is refused, naming both', () => {
  const text = validateViewState({ view: 'probe-accuracy', data: { layers: [0, 1, 2], text: [0.1, 0.7, 0.9], threshold: 0.5 } });
  assert.ok(text.ok && text.state.view === 'probe-accuracy', text.ok ? '' : text.problems.join('; '));
  if (text.ok && text.state.view === 'probe-accuracy') {
    assert.equal(text.state.data.image, null);
    assert.deepEqual(text.state.data.resolution, { image: null, text: 1 });
  }
  const neither = validateViewState({ view: 'probe-accuracy', data: { layers: [0, 1, 2], threshold: 0.5 } });
  assert.ok(!neither.ok);
  if (!neither.ok) assert.match(neither.problems.join('; '), /data\.image: is missing, and so is text/);
});

test('probe-accuracy: the transfer curve (probe fit on text, read on the image) validates, gets its resolution layer, and is range-checked', () => {
  const r = validateViewState({ view: 'probe-accuracy', data: { layers: [0, 1, 2, 3], image: [1, 1, 1, 1], text: [0.2, 0.9, 0.9, 0.8], transfer: [0, 0.1, 0.6, 0.7], threshold: 0.5 } });
  assert.ok(r.ok, r.ok ? '' : r.problems.join('; '));
  if (r.ok && r.state.view === 'probe-accuracy') {
    assert.deepEqual(r.state.data.transfer, [0, 0.1, 0.6, 0.7]);
    assert.deepEqual(r.state.data.resolution, { image: 0, text: 1, transfer: 2 });
  }
  const without = validateViewState({ view: 'probe-accuracy', data: { layers: [0, 1], image: [1, 1] } });
  assert.ok(without.ok && without.state.view === 'probe-accuracy' && !('transfer' in without.state.data));
  const bad = validateViewState({ view: 'probe-accuracy', data: { layers: [0, 1], image: [1, 1], transfer: [0.5, 3] } });
  assert.equal(bad.ok, false);
  assert.match(bad.ok ? '' : bad.problems.join('; '), /transfer/);
});

test('probe-accuracy: the peak rule gives the layers when the data has none, and the bootstrap intervals are shape-checked', () => {
  const base = { layers: [0, 1, 2, 3], image: [0.9, 0.9, 0.9, 0.9], text: [0.1, 0.15, 0.17, 0.16], threshold: 0.9 };
  const peak = validateViewState({ view: 'probe-accuracy', data: { ...base, thresholdOf: 'peak' } });
  assert.ok(peak.ok && peak.state.view === 'probe-accuracy', peak.ok ? '' : peak.problems.join('; '));
  // 90 % of the text curve's best (0.17) is 0.153: layer 2. As an accuracy, 0.9 is never reached.
  assert.deepEqual(peak.state.data.resolution, { image: 0, text: 2 });
  assert.equal(peak.state.data.thresholdOf, 'peak');
  const plain = validateViewState({ view: 'probe-accuracy', data: base });
  assert.ok(plain.ok && plain.state.view === 'probe-accuracy');
  assert.deepEqual(plain.state.data.resolution, { image: 0, text: null });
  const ci = { image: { low: 0, high: 0, agree: 1 }, text: { low: 1, high: null, agree: 0.4 } };
  const withCi = validateViewState({ view: 'probe-accuracy', data: { ...base, resolutionCI: ci } });
  assert.ok(withCi.ok && withCi.state.view === 'probe-accuracy');
  assert.deepEqual(withCi.state.data.resolutionCI, ci);
  const bad: [Record<string, unknown>, RegExp][] = [
    [{ thresholdOf: 'best' }, /thresholdOf: the string "best" is not one of accuracy, peak/],
    [{ resolutionCI: { image: { low: 2, high: 1, agree: 0.5 } } }, /resolutionCI\.image: low 2 is above high 1/],
    [{ resolutionCI: { image: { low: null, high: 1, agree: 0.5 } } }, /resolutionCI\.image: low null \(never resolves\) with high 1/],
    [{ resolutionCI: { image: { low: 0.5, high: 1, agree: 0.5 } } }, /resolutionCI\.image\.low: expected a layer or null/],
    [{ resolutionCI: { image: { low: 0, high: 1, agree: 2 } } }, /resolutionCI\.image\.agree: expected a share in \[0, 1\]/],
    [{ resolutionCI: { probe: { low: 0, high: 1, agree: 1 } } }, /resolutionCI\.probe: is not a curve/],
    [{ resolutionCI: [1, 2] }, /resolutionCI: expected \{image, text, transfer\} intervals/],
  ];
  for (const [extra, expect] of bad) {
    const b = validateViewState({ view: 'probe-accuracy', data: { ...base, ...extra } });
    assert.equal(b.ok, false, String(expect));
    assert.match(b.ok ? '' : b.problems.join('; '), expect);
  }
});

test("attribution-map: the optional cosine map (circuit's reuse) validates on the scores' layers, null as not computed, and is shape- and range-checked", () => {
  const base = { layers: [0, 1], positions: ['a', 'b'], scores: [[0.1, 0.2], [0.3, 0.4]] };
  const sim = { title: 'reuse', positions: [{ label: 'VLM·image mlp entity-last', kind: 'image' }], scores: [[0.9], [null]] };
  const r = validateViewState({ view: 'attribution-map', data: { ...base, similarity: sim } });
  assert.ok(r.ok, r.ok ? '' : r.problems.join('; '));
  if (r.ok && r.state.view === 'attribution-map') {
    assert.equal(r.state.data.similarity?.title, 'reuse');
    assert.equal(r.state.data.similarity?.scores[0][0], 0.9);
    assert.ok(Number.isNaN(r.state.data.similarity?.scores[1][0]));
  }
  const without = validateViewState({ view: 'attribution-map', data: base });
  assert.ok(without.ok && without.state.view === 'attribution-map' && !('similarity' in without.state.data));
  const bad: [unknown, RegExp][] = [
    [{ ...sim, scores: [[0.9], [0.5], [0.1]] }, /similarity\.scores: has 3 rows but the axis has only 2/],
    [{ ...sim, scores: [[1.5], [0.5]] }, /similarity\.scores: cosines lie in \[-1, 1\], got 1\.5/],
    [{ ...sim, title: 3 }, /similarity\.title: expected a string/],
    [{ title: 'reuse', scores: [[1], [1]] }, /similarity\.positions: is missing/],
    ['reuse', /similarity: expected \{title, positions, scores\}/],
  ];
  for (const [similarity, expect] of bad) {
    const b = validateViewState({ view: 'attribution-map', data: { ...base, similarity } });
    assert.equal(b.ok, false, String(expect));
    assert.match(b.ok ? '' : b.problems.join('; '), expect);
  }
});

test('attribution-map: columns are positions unless the data says sites (the circuit), scores estimates unless it says exact; any other kind is named as wrong', () => {
  const base = { layers: [0, 1], positions: ['a', 'b'], scores: [[0.1, 0.2], [0.3, 0.4]] };
  const plain = validateViewState({ view: 'attribution-map', data: base });
  assert.ok(plain.ok && plain.state.view === 'attribution-map' && plain.state.data.columns === undefined);
  const sites = validateViewState({ view: 'attribution-map', data: { ...base, columns: 'site' } });
  assert.ok(sites.ok && sites.state.view === 'attribution-map' && sites.state.data.columns === 'site');
  // What the scores are: estimates unless the data says every cell was measured by exact patching.
  assert.ok(plain.ok && plain.state.view === 'attribution-map' && plain.state.data.measured === undefined);
  const exact = validateViewState({ view: 'attribution-map', data: { ...base, columns: 'site', measured: 'exact' } });
  assert.ok(exact.ok && exact.state.view === 'attribution-map' && exact.state.data.measured === 'exact');
  const wrong = validateViewState({ view: 'attribution-map', data: { ...base, measured: 'measured' } });
  assert.equal(wrong.ok, false);
  assert.match(wrong.ok ? '' : wrong.problems.join('; '), /measured: .* is not what the scores are; use one of estimate, exact/);
  for (const columns of ['sites', 3]) {
    const b = validateViewState({ view: 'attribution-map', data: { ...base, columns } });
    assert.equal(b.ok, false, String(columns));
    assert.match(b.ok ? '' : b.problems.join('; '), /columns: .* is not a column kind; use one of position, site/);
  }
});

test('a comparison validates each model\'s data like the view\'s own, and names what is wrong where', () => {
  for (const s of comparedViewStates()) {
    const r = validateViewState(s);
    assert.ok(r.ok, `${s.view}: ${r.ok ? '' : r.problems.join('; ')}`);
    if (r.ok) {
      assert.equal(r.state.label, 'late');
      assert.deepEqual(r.state.compare.map((c) => c.label), ['early']);
    }
  }
  const own = probeAccuracyState();
  const one = validateViewState(own);
  assert.ok(one.ok && one.state.label === null && one.state.compare.length === 0, 'one model: no label, nothing compared');
  const problems = (extra: Record<string, unknown>) => {
    const r = validateViewState({ ...own, ...extra });
    assert.ok(!r.ok, JSON.stringify(extra).slice(0, 80));
    return r.ok ? '' : r.problems.join('\n');
  };
  assert.match(problems({ label: 'late', compare: [{ label: 'early', data: { layers: [0, 1], image: [0.5, 1.5] } }] }), /compare\[0\]\.data\.image/);
  assert.match(problems({ label: 'late', compare: { early: own.data } }), /compare: expected a list of \{label, data\}/);
  assert.match(problems({ label: 'late', compare: [{ data: own.data }] }), /compare\[0\]: expected \{label: the model's name/);
  assert.match(problems({ label: 3, compare: [] }), /label: expected the name of the model/);
  assert.match(problems({ compare: [{ label: 'early', data: own.data }] }), /label: a comparison needs the name/);
  const six = Array.from({ length: 6 }, (_, i) => ({ label: `m${i}`, data: own.data }));
  assert.match(problems({ label: 'late', compare: six }), /7 models on one figure; at most 6/);
});

test('a streaming sweep may send fewer values than layers; they are padded as not computed', () => {
  const r = validateViewState({
    view: 'knockout-map',
    data: { layers: [4, 5, 6, 7], edgeSets: ['image → last', 'last → last'], relChange: [[-0.5, -0.2]] },
    progress: { done: 2, total: 8 },
  });
  assert.ok(r.ok);
  if (r.ok && r.state.view === 'knockout-map') {
    assert.equal(r.state.data.relChange.length, 2);
    assert.equal(r.state.data.relChange[0].length, 4);
    assert.ok(Number.isNaN(r.state.data.relChange[1][0]));
    assert.deepEqual(r.state.progress, { done: 2, total: 8 });
  }
});

test('bad states produce readable problems naming the field', () => {
  for (const { state, expect } of badViewStates()) {
    const r = validateViewState(state);
    assert.equal(r.ok, false, `${state.title} should not validate`);
    if (!r.ok) {
      const text = [r.error ? `The kernel reported an error: ${r.error}` : '', ...r.problems].join('\n');
      assert.match(text, expect, `${state.title}: got ${text}`);
    }
  }
  const notObject = validateViewState(42);
  assert.equal(notObject.ok, false);
});

test('an empty state during a sweep is "waiting", not invalid', () => {
  const r = validateViewState({ view: 'layer-switch', data: {}, progress: { done: 0, total: 25 } });
  assert.equal(r.ok, false);
  if (!r.ok) {
    assert.equal(r.empty, true);
    assert.deepEqual(r.problems, []);
  }
});

test('switch layer and PNG size helpers', () => {
  assert.equal(computeSwitchLayer([10, 11, 12, 13], [0.9, 0.6, 0.4, 0.1], [0.05, 0.3, 0.5, 0.8]), 12);
  assert.equal(computeSwitchLayer([1, 2], [0.9, 0.8], [0.1, 0.2]), null);
  assert.deepEqual(pngSize(picture(40).png), { width: 40, height: 40 });
  assert.equal(pngSize('bm90IGEgcG5n'), null);
});
