// Synthetic but realistic view states for every view kind (numbers shaped like LLaVA-1.5-7B results),
// in the wire forms the kernel may use: JSON lists, typed arrays and {dtype, shape, buffer} objects.

import { PNG } from 'pngjs';
import { mulberry32 } from '../../src/data/random';
import type { ViewStateInput } from '../../src/report/static-page';

/** Deterministic PRNG, so screenshots and assertions are stable. */
export const rng = mulberry32;

const sigmoid = (x: number) => 1 / (1 + Math.exp(-x));
const range = (a: number, b: number) => Array.from({ length: b - a + 1 }, (_, i) => a + i);
const round = (x: number, d = 3) => Math.round(x * 10 ** d) / 10 ** d;

/** A letter-boxed 'photo': sky gradient, a tower-like shape, black bars (as PopVQA's 336×336 images). */
export function picture(size = 336): { png: string; rgb: Uint8Array } {
  const img = new PNG({ width: size, height: size });
  const rgb = new Uint8Array(size * size * 3);
  for (let y = 0; y < size; y++) {
    for (let x = 0; x < size; x++) {
      const bar = y < size * 0.12 || y > size * 0.88;
      const tower = Math.abs(x - size / 2) < (size * 0.04 + (y - size * 0.2) * 0.35) && y > size * 0.2 && y < size * 0.85;
      const r = bar ? 0 : tower ? 90 : 120 + (60 * y) / size;
      const g = bar ? 0 : tower ? 70 : 160 + (40 * y) / size;
      const b = bar ? 0 : tower ? 60 : 230 - (50 * y) / size;
      const i = y * size + x;
      img.data[4 * i] = r;
      img.data[4 * i + 1] = g;
      img.data[4 * i + 2] = b;
      img.data[4 * i + 3] = 255;
      rgb[3 * i] = r;
      rgb[3 * i + 1] = g;
      rgb[3 * i + 2] = b;
    }
  }
  return { png: PNG.sync.write(img).toString('base64'), rgb };
}

const ENTITIES: [string, string][] = [
  ['Barack Obama', 'celebs'], ['Taylor Swift', 'celebs'], ['Eiffel Tower', 'landmarks'], ['Taj Mahal', 'landmarks'],
  ['Mona Lisa', 'paintings'], ['The Starry Night', 'paintings'], ['Nike', 'brands'], ['Coca-Cola', 'brands'],
  ['Angela Merkel', 'celebs'], ['Colosseum', 'landmarks'],
];

export function layerSwitchState(): ViewStateInput {
  const r = rng(1);
  const layers = range(5, 29);
  const pairs = ENTITIES.map(([target, targetType], i) => {
    const [donor, donorType] = ENTITIES[(i + 3) % ENTITIES.length];
    const flip = 18 + Math.floor(r() * 5);
    const namesDonor = layers.map((l) => l < flip && r() > 0.1);
    const namesTarget = layers.map((l) => l >= flip || r() < 0.05);
    const generations = layers.map((_, j) =>
      namesDonor[j] ? `The subject in this image is ${donor}.` : namesTarget[j] ? `The subject in this image is ${target}.` : 'I am not sure who this is.',
    );
    return { donor, target, donorType, targetType, namesDonor, namesTarget, generations };
  });
  const frac = (key: 'namesDonor' | 'namesTarget') => layers.map((_, j) => round(pairs.filter((p) => p[key][j]).length / pairs.length));
  return {
    view: 'layer-switch',
    title: 'Cross-patching: where does the entity get resolved? (LLaVA-1.5-7B)',
    data: {
      layers,
      donorFraction: Float32Array.from(layers.map((l) => 0.95 * sigmoid(-(l - 20) / 1.2) + 0.02 * r())),
      targetFraction: frac('namesTarget').map((x, j) => Math.max(x, round(0.9 * sigmoid((layers[j] - 20) / 1.2)))),
      runs: 50,
      pairs,
      model: 'llava-1.5-7b',
    },
    progress: null,
    error: null,
  };
}

export function freezeCurveState(): ViewStateInput {
  const sourceLayers = range(0, 19);
  const curve = (shift: number) => sourceLayers.map((l) => round(0.3 + 0.65 * sigmoid((l - shift) / 2)));
  return {
    view: 'freeze-curve',
    title: 'Freezing image tokens from layer l to 20 (LLaVA-MORE CLIP)',
    data: {
      sourceLayers,
      identified: curve(9),
      freezeUntil: 20,
      entities: 844,
      earlyCutoff: 5,
      split: { early: { n: 212, visualAcc: 0.26, textAcc: 0.442 }, late: { n: 632, visualAcc: 0.192, textAcc: 0.347 } },
      series: [
        { name: 'celebs', identified: curve(11) },
        { name: 'landmarks', identified: curve(7) },
      ],
    },
    progress: null,
    error: null,
  };
}

export function knockoutMapState(): ViewStateInput {
  const r = rng(3);
  const layers = range(4, 27);
  const edgeSets = ['image → last', 'image → query+generated', 'entity → last', 'last → last'];
  const rel = new Float32Array(edgeSets.length * layers.length);
  edgeSets.forEach((_, e) =>
    layers.forEach((l, c) => {
      const depth = [0.75, 0.45, 0.3, 0.1][e];
      rel[e * layers.length + c] = -depth * Math.exp(-((l - (12 + e * 3)) ** 2) / 18) + 0.04 * (r() - 0.5);
    }),
  );
  return {
    view: 'knockout-map',
    title: 'Attention knockout (window w = 9): relative change of p(answer)',
    data: {
      layers,
      edgeSets,
      relChange: { dtype: 'float32', shape: [edgeSets.length, layers.length], buffer: rel },
      window: 9,
      accuracy: edgeSets.map((_, e) => layers.map((_, c) => round(0.276 * (1 + rel[e * layers.length + c])))),
    },
    progress: null,
    error: null,
  };
}

export function probeAccuracyState(): ViewStateInput {
  const layers = range(0, 31);
  return {
    view: 'probe-accuracy',
    title: 'Linear probe for entity identity (last image token vs entity token)',
    data: {
      layers,
      image: layers.map((l) => round(0.02 + 0.9 * sigmoid((l - 16) / 2))),
      text: layers.map((l) => round(0.05 + 0.9 * sigmoid((l - 4) / 1.5))),
      transfer: layers.map((l) => round(0.01 + 0.6 * sigmoid((l - 18) / 2))),
      threshold: 0.8,
      // A bootstrap interval per resolved curve (the probe's cluster bootstrap): a band on the live view.
      resolutionCI: { image: { low: 19, high: 21, agree: 0.55 }, text: { low: 7, high: 7, agree: 1 } },
      chance: 0.01,
      position: 'last image token',
      target: 'entity identity',
    },
    progress: null,
    error: null,
  };
}

/** Positions of a LLaVA prompt: text before the image, a grid of image tokens, the query after it. */
function promptPositions(gridRows: number, gridCols: number) {
  const before = ['USER', ':', ' '].map((label) => ({ label, kind: 'text' as const }));
  const image = range(0, gridRows * gridCols - 1).map((i) => ({ label: `img ${i}`, kind: 'image' as const }));
  const after = ['\n', 'Identify', ' by', ' name', ' the', ' place', '.', 'ASSISTANT', ':'].map((label) => ({ label, kind: 'text' as const }));
  return [...before, ...image, ...after];
}

export function logitLensState(pic = picture()): ViewStateInput {
  const r = rng(4);
  const layers = range(0, 31).filter((l) => l % 2 === 1);
  const positions = promptPositions(6, 6);
  const K = 3;
  const vocab = ['the', 'Paris', 'tower', 'E', 'iff', 'Eiffel', 'sky', ' of', 'France', 'steel'];
  const topTokens: string[][][] = [];
  const probs = new Float32Array(layers.length * positions.length * K);
  const target: number[][] = [];
  layers.forEach((l, li) => {
    const plane: string[][] = [];
    const trow: number[] = [];
    positions.forEach((pos, pi) => {
      const late = sigmoid((l - 18) / 2.5);
      const isEntity = pos.kind === 'image' && ((pi * 7) % 5 === 0 || pi % 6 === 2);
      const p1 = Math.min(0.97, (isEntity ? 0.15 + 0.8 * late : 0.1 + 0.3 * r()) + 0.05 * r());
      const toks = isEntity && late > 0.5 ? ['Eiffel', 'tower', 'Paris'] : [vocab[(pi + li) % vocab.length], vocab[(pi * 3 + 1) % vocab.length], vocab[(li + 5) % vocab.length]];
      plane.push(toks);
      const ps = [p1, (1 - p1) * 0.5, (1 - p1) * 0.2];
      ps.forEach((p, k) => (probs[(li * positions.length + pi) * K + k] = p));
      trow.push(round(isEntity ? 0.9 * late * p1 : 0.01 * r(), 4));
    });
    topTokens.push(plane);
    target.push(trow);
  });
  return {
    view: 'logit-lens',
    title: 'Logit lens over the image tokens: when do they decode to the entity?',
    data: {
      layers,
      positions,
      topTokens,
      topProbs: { dtype: 'float32', shape: [layers.length, positions.length, K], buffer: probs },
      target: { token: 'Eiffel', probs: target },
      image: { png: pic.png, gridRows: 6, gridCols: 6 },
    },
    progress: null,
    error: null,
  };
}

export function attributionMapState(pic = picture(112)): ViewStateInput {
  const r = rng(5);
  const layers = range(0, 23);
  const positions = promptPositions(8, 8);
  const scores = layers.map((l) =>
    positions.map((p, pi) => {
      if (p.kind === 'image') {
        const i = pi - 3;
        const row = Math.floor(i / 8);
        const col = i % 8;
        const centre = Math.exp(-((row - 4) ** 2 + (col - 3.5) ** 2) / 6);
        return round(centre * Math.exp(-((l - 8) ** 2) / 30) * 0.8 + 0.03 * (r() - 0.5), 4);
      }
      return round((p.label === ':' && pi === positions.length - 1 ? 0.6 * sigmoid((l - 14) / 2) : 0.02) * (r() - 0.3), 4);
    }),
  );
  return {
    view: 'attribution-map',
    title: 'Attribution patching: logit difference (clean − corrupt entity)',
    data: {
      layers,
      positions,
      scores,
      metric: 'logit diff',
      image: { rgb: pic.rgb, width: 112, height: 112, gridRows: 8, gridCols: 8 },
      confirmed: [
        { layer: 8, position: 3 + 4 * 8 + 3, exact: 0.71 },
        { layer: 8, position: 3 + 4 * 8 + 4, exact: 0.66 },
        { layer: 15, position: positions.length - 1, exact: 0.31 },
      ],
      // The circuit experiment's reuse map: cosines, high where the run keeps the backbone's computation; null
      // where no pair gave one (drawn blank).
      similarity: {
        title: "reuse: cosine with the backbone's site",
        positions: ['VLM·text mlp entity-last', 'VLM·text mlp last', 'VLM·image mlp entity-last', 'VLM·image mlp last'].map((label) => ({ label, kind: label.includes('image') ? 'image' : 'text' })),
        scores: layers.map((l) => [l < 12 ? 1 : round(0.5 * r(), 3), round(0.4 + 0.5 * r(), 3), l === 0 ? null : round(Math.exp(-l / 6) - 0.1 * r(), 3), round(r() * 2 - 1, 3)]),
      },
    },
    progress: null,
    error: null,
  };
}

/**
 * The circuit experiment's view: no picture, one column per run · component · position group (24 sites over 8
 * layers), and the VLM runs' reuse beside it (16 sites).
 */
export function circuitMapState(): ViewStateInput {
  const r = rng(9);
  const layers = range(0, 8);
  const sites = (runs: string[]) => runs.flatMap((run) => ['attn', 'mlp'].flatMap((c) => ['entity-last', 'entity', 'query', 'last'].map((g) => ({ label: `${run} ${c} ${g}`, kind: run === 'VLM·image' ? 'image' : 'text' }))));
  const cols = sites(['LLM·text', 'VLM·text', 'VLM·image']);
  const reuseCols = sites(['VLM·text', 'VLM·image']);
  return {
    view: 'attribution-map',
    title: 'attribution by layer × (run · component · position group)',
    data: {
      layers,
      positions: cols,
      scores: layers.map((l) => cols.map((c) => round((c.label.endsWith('mlp last') ? -0.4 * l : c.label.includes('mlp entity') && l === 0 ? -2 : 0.1) * r(), 3))),
      metric: 'logit diff',
      image: null,
      confirmed: [{ layer: 0, position: 5, exact: -1.8 }],
      columns: 'site',
      similarity: {
        title: "reuse: cosine with the backbone's site",
        positions: reuseCols,
        scores: layers.map((l) => reuseCols.map((c) => (c.kind === 'text' && l < 3 ? 1 : round(r() * 1.2 - 0.2, 3)))),
      },
    },
    progress: null,
    error: null,
  };
}

export function recallGapState(): ViewStateInput {
  const row = (type: string, n: number, t: number, v: number, p: number) => {
    const ci = (a: number) => [round(a - 1.96 * Math.sqrt((a * (1 - a)) / n)), round(a + 1.96 * Math.sqrt((a * (1 - a)) / n))];
    return { type, n, textAcc: t, textCI: ci(t), imageAcc: v, imageCI: ci(v), pValue: p };
  };
  return {
    view: 'recall-gap',
    title: 'Text vs image factual accuracy (PopVQA, identified entities)',
    data: {
      rows: [row('celebs', 310, 0.52, 0.31, 1e-8), row('landmarks', 250, 0.47, 0.3, 2e-6), row('paintings', 180, 0.41, 0.22, 4e-5), row('brands', 185, 0.37, 0.25, 0.003)],
      overall: row('all', 925, 0.453, 0.276, 1e-20),
      model: 'llava-1.5-7b',
      matchRule: 'popvqa-words',
    },
    progress: null,
    error: null,
  };
}

/** Backbone → VLM patching: accuracy recovered mid-network, the last layers not yet run (NaN). */
export function recoveryCurveState(): ViewStateInput {
  const layers = Array.from({ length: 32 }, (_, i) => i);
  const patched = layers.map((l) => (l >= 28 ? NaN : round(0.28 + 0.17 * Math.exp(-((l - 14) ** 2) / 40))));
  return {
    view: 'recovery-curve',
    title: 'Backbone → VLM patching at the last image token',
    data: { layers, patched: Float32Array.from(patched), imageAcc: 0.276, textAcc: 0.453, cotAcc: 0.35, position: 'last-image' },
    progress: { done: 28, total: 32 },
    error: null,
  };
}

export function allViewStates(): ViewStateInput[] {
  const pic = picture();
  return [layerSwitchState(), freezeCurveState(), knockoutMapState(), probeAccuracyState(), logitLensState(pic), attributionMapState(), recallGapState(), recoveryCurveState()];
}

/**
 * Every view comparing two models (compareResults' shape): the fixture's data as "late" and a copy with every
 * curve lowered as "early", so the two models' marks differ on the page.
 */
export function comparedViewStates(): ViewStateInput[] {
  // Fractions strictly between 0 and 1 scaled by 0.8; integers (axes, counts, layers), pictures and binary
  // buffers kept.
  const lower = (v: unknown, key = ''): unknown => {
    if (ArrayBuffer.isView(v)) return v;
    if (key === 'image' && v !== null && !Array.isArray(v)) return v;
    if (Array.isArray(v)) return v.map((x) => lower(x));
    if (typeof v === 'number') return v > 0 && v < 1 ? round(v * 0.8) : v;
    if (v && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, lower(x, k)]));
    return v;
  };
  return allViewStates().map((s) => ({ ...s, title: `${s.view}: late vs early`, label: 'late', compare: [{ label: 'early', data: lower(s.data) }] }));
}

/** States that must each produce a readable message instead of a chart. */
export function badViewStates(): { state: ViewStateInput; expect: RegExp }[] {
  return [
    { state: { view: 'layer-swtich', title: 'typo in view kind', data: {} }, expect: /is not a view kind; use one of layer-switch/ },
    {
      state: { view: 'layer-switch', title: 'missing and out-of-range fields', data: { layers: [1, 2, 3], donorFraction: [0.1, 1.7, 0.2] } },
      expect: /data\.targetFraction: is missing/,
    },
    {
      state: { view: 'knockout-map', title: 'wrong matrix size', data: { layers: [1, 2, 3], edgeSets: ['image → last'], relChange: [0.1, 0.2] } },
      expect: /data\.relChange: a flat array needs 1×3 = 3 values, got 2/,
    },
    { state: { view: 'recall-gap', title: 'data is not an object', data: 'oops' }, expect: /data: expected an object/ },
    {
      state: { ...probeAccuracyState(), title: 'a compared model with a broken curve', label: 'late', compare: [{ label: 'early', data: { layers: [0, 1] } }] },
      expect: /compare\[0\]\.data\.image: is missing/,
    },
    { state: { ...probeAccuracyState(), title: 'a comparison without the own model\'s name', compare: [{ label: 'early', data: probeAccuracyState().data }] }, expect: /label: a comparison needs the name/ },
    { state: { view: 'probe-accuracy', title: 'kernel error', data: {}, error: 'CheckpointError: weights not found' }, expect: /The kernel reported an error: CheckpointError: weights not found/ },
    {
      state: { view: 'logit-lens', title: 'grid does not match the image positions', data: { ...(logitLensState().data as object), image: { png: picture(32).png, gridRows: 5, gridCols: 5 } } },
      expect: /the 5×5 grid needs 25 image positions, got 36/,
    },
  ];
}
