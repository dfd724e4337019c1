// The notebooks print `KEY id=<id> name=value ...` and `SPEC id=<id> {json}` lines; the test reruns each spec with
// the library and derives the same numbers from the result (from its table where that is simple, else its summary).
import * as path from 'node:path';
import { resolutionLayer } from '../../src/experiments/resolution';

export type KeyValue = number | string | null;

export interface KeyLine {
  id: string;
  values: Record<string, KeyValue>;
  spec: Record<string, unknown>;
  /** The model folder the spec ran on (`SPEC id=.. model=DIR {...}`, relative to the notebook); absent: the notebook's first %load. */
  model?: string;
}

function parseValue(v: string): KeyValue {
  if (v === 'null' || v === 'undefined') return null;
  if (v === 'NaN') return NaN;
  const n = Number(v);
  return v.trim() !== '' && Number.isFinite(n) ? n : v;
}

/** KEY and SPEC lines of a notebook's stream outputs, paired by id. */
export function parseKeys(streamText: string): KeyLine[] {
  const keys = new Map<string, Record<string, KeyValue>>();
  const specs = new Map<string, { spec: Record<string, unknown>; model?: string }>();
  for (const line of streamText.split('\n')) {
    let m = /^KEY id=(\S+)((?: \S+=\S*)*)\s*$/.exec(line);
    if (m) {
      const values: Record<string, KeyValue> = {};
      for (const kv of m[2].trim().split(/\s+/).filter(Boolean)) {
        const eq = kv.indexOf('=');
        values[kv.slice(0, eq)] = parseValue(kv.slice(eq + 1));
      }
      keys.set(m[1], values);
      continue;
    }
    m = /^SPEC id=(\S+)(?: model=(\S+))? (\{.*\})\s*$/.exec(line);
    if (m) specs.set(m[1], { spec: JSON.parse(m[3]) as Record<string, unknown>, ...(m[2] ? { model: m[2] } : {}) });
  }
  return [...keys].map(([id, values]) => {
    const s = specs.get(id);
    if (!s) throw new Error(`KEY id=${id} has no SPEC line`);
    return { id, values, ...s };
  });
}

/** Folder paths inside a spec (the recovery backbone) are relative to the notebook, as in the kernel. */
export function resolveSpecPaths(spec: Record<string, unknown>, notebookDir: string): Record<string, unknown> {
  const out = { ...spec };
  if (typeof out.backbone === 'string' && !path.isAbsolute(out.backbone)) out.backbone = path.resolve(notebookDir, out.backbone);
  return out;
}

/** null, undefined and NaN all mean "no value"; numbers agree to the 6 decimals the notebooks print. */
export function sameValue(printed: KeyValue, measured: unknown): boolean {
  const none = (v: unknown) => v === null || v === undefined || (typeof v === 'number' && Number.isNaN(v));
  if (none(printed) || none(measured)) return none(printed) && none(measured);
  if (typeof printed === 'number' && typeof measured === 'number') return Math.abs(printed - measured) <= 2e-6 + 1e-9 * Math.abs(measured);
  return String(printed) === String(measured);
}

// ---------------------------------------------------------------------------------------------------------------
// Derivations from a library result. Tables are arquero tables: `objects()` gives plain rows.

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type Result = { kind: string; spec: Record<string, any>; table: { objects(): Record<string, any>[] }; summary: any };
type Derive = (r: Result) => Record<string, unknown>;

const mean = (xs: number[]) => (xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : NaN);
const finiteMin = (m: number[][]) => Math.min(...m.flat().filter(Number.isFinite));

/** Mean over entities of the per-entity mean of `correct`, for rows passing `keep`. */
function entityAccuracy(rows: Record<string, unknown>[], keep: (r: Record<string, unknown>) => boolean): number {
  const per = new Map<string, number[]>();
  for (const r of rows) if (keep(r)) per.set(String(r.entity), [...(per.get(String(r.entity)) ?? []), r.correct ? 1 : 0]);
  return mean([...per.values()].map(mean));
}

function fractionAt(rows: Record<string, unknown>[], layer: number, field: string): number {
  const at = rows.filter((r) => r.layer === layer);
  return at.length ? at.filter((r) => r[field]).length / at.length : NaN;
}

/** First layer at which the entity's first name token is the top-1 decoding at some image position (min over prompts). */
function lensFirstLayer(rows: Record<string, unknown>[]): number | null {
  let best: number | null = null;
  for (const r of rows) {
    if (r.rank !== 0 || r.kind !== 'image' || r.pEntity === null) continue;
    if (Math.abs(Number(r.prob) - Number(r.pEntity)) < 1e-9) best = best === null ? Number(r.layer) : Math.min(best, Number(r.layer));
  }
  return best;
}

/** The transfer probe's resolution layer, and the layer of its curve's maximum recomputed from the table. */
const transferProbe: Derive = (r) => ({ resolution: r.summary.resolution.transfer, peak: transferPeak(r) });

/** The layer of the transfer curve's maximum (the first on a tie), recomputed from the table's transfer rows. */
function transferPeak(r: Result): number {
  const rows = r.table.objects().filter((x) => x.modality === 'transfer');
  let best = rows[0];
  for (const x of rows) if (Number(x.testAcc) > Number(best.testAcc) || (Number(x.testAcc) === Number(best.testAcc) && x.layer < best.layer)) best = x;
  return Number(best.layer);
}

export const DERIVE: Record<string, Derive> = {
  'recall-gap': (r) => {
    const rows = r.table.objects();
    const ids = new Set(rows.filter((x) => x.condition === 'identify' && x.correct).map((x) => String(x.entity)));
    const textAcc = entityAccuracy(rows, (x) => x.condition === 'text' && ids.has(String(x.entity)));
    const imageAcc = entityAccuracy(rows, (x) => x.condition === 'image' && ids.has(String(x.entity)));
    return { identified: r.summary.entities, textAcc, imageAcc, drop: textAcc - imageAcc };
  },
  'cross-patch': (r) => {
    const rows = r.table.objects();
    const layers = r.summary.layers as number[];
    return {
      switchLayer: r.summary.switchLayer,
      sameSwitch: r.summary.sameType.switchLayer,
      crossSwitch: r.summary.crossType.switchLayer,
      pairs: r.summary.pairs,
      donorAtFirst: fractionAt(rows, layers[0], 'namesDonor'),
      targetAtLast: fractionAt(rows, layers[layers.length - 1], 'namesTarget'),
    };
  },
  freeze: (r) => {
    const rows = r.table.objects();
    const layers = r.summary.sourceLayers as number[];
    const identifiedAt = (l: number) => mean(rows.filter((x) => x.sourceLayer === l).map((x) => (x.identified ? 1 : 0)));
    return {
      entities: r.summary.entities,
      until: r.summary.until,
      earlyIdentified: r.summary.earlyIdentified,
      identifiedFirst: identifiedAt(layers[0]),
      identifiedLast: identifiedAt(layers[layers.length - 1]),
      earlyGap: r.summary.split?.early.gap,
      lateGap: r.summary.split?.late.gap,
    };
  },
  'knockout-windows': (r) => ({ prompts: r.summary.prompts, minRelChange: finiteMin(r.summary.relChange), imageLastFirst: r.summary.relChange[0][0] }),
  'knockout-bands': (r) => ({ minRelChange: finiteMin(r.summary.relChange), baselineAccuracy: r.summary.baselineAccuracy, imageQueryEarly: r.summary.relChange[1][0] }),
  'logit-lens': (r) => ({ prompts: r.summary.prompts, firstEntityLayer: lensFirstLayer(r.table.objects()) }),
  probe: (r) => ({
    imageResolution: r.summary.resolution.image,
    textResolution: r.summary.resolution.text,
    imageAccLast: r.summary.image[r.summary.image.length - 1],
    textAccFirst: r.summary.text[0],
  }),
  attribution: (r) => ({ pairs: r.summary.pairs.length, meanAbsError: r.summary.meanAbsError, topExact: r.summary.pairs[0]?.confirmed[0]?.exact ?? null }),
  'attribution-ig': (r) => ({ meanAbsError: r.summary.meanAbsError }),
  recovery: (r) => {
    const rows = r.table.objects();
    return {
      imageAcc: entityAccuracy(rows, (x) => x.condition === 'image'),
      textAcc: entityAccuracy(rows, (x) => x.condition === 'text'),
      bestLayer: r.summary.bestLayer,
      bestAcc: Math.max(...(r.summary.patchedAcc as number[]).filter(Number.isFinite)),
      // Measured on the half of the entities the layer was not chosen on; its bootstrap from the rerun's summary.
      recovered: r.summary.recovered,
      recoveredLow: r.summary.recoveredCI?.recovered.low ?? null,
      recoveredHigh: r.summary.recoveredCI?.recovered.high ?? null,
    };
  },
  cot: (r) => {
    const rows = r.table.objects();
    return { imageAcc: entityAccuracy(rows, (x) => x.condition === 'image'), cotAcc: entityAccuracy(rows, (x) => x.condition === 'cot') };
  },
  circuit: (r) => {
    // The error of the re-measured sites from the table (rows with an exact value); the rest from the summary.
    const rows = r.table.objects();
    const confirmed = rows.filter((x) => x.exact !== null && x.exact !== undefined);
    const recallRows = rows.filter((x) => x.run === 'vlm-image' && x.component === 'mlp_out' && x.group === 'entity-last');
    // With every site re-measured (topK = all): the backbone's recall MLPs (mlp_out at entity-last among its top k
    // sites by mean exact effect), the share of them among the image run's top k, and the effect it carries there.
    const k = Number(r.spec.k);
    const exactMeans = (run: string) => {
      const by = new Map<string, number[]>();
      for (const x of rows.filter((y) => y.run === run)) by.set(`${x.component}/${x.layer}/${x.group}`, [...(by.get(`${x.component}/${x.layer}/${x.group}`) ?? []), Number(x.exact)]);
      return new Map([...by].map(([key, v]) => [key, mean(v)]));
    };
    const everySite = rows.length > 0 && confirmed.length === rows.length;
    const bbEx = everySite ? exactMeans('backbone-text') : new Map<string, number>();
    const imEx = everySite ? exactMeans('vlm-image') : new Map<string, number>();
    const topOf = (m: Map<string, number>) => [...m].sort((a, b) => Math.abs(b[1]) - Math.abs(a[1])).slice(0, k).map(([key]) => key);
    const recallSites = topOf(bbEx).filter((key) => key.startsWith('mlp_out/') && key.endsWith('/entity-last'));
    const imTop = new Set(topOf(imEx));
    const sum = (m: Map<string, number>) => recallSites.reduce((a, key) => a + m.get(key)!, 0);
    return {
      exactFoundImage: recallSites.length ? recallSites.filter((key) => imTop.has(key)).length / recallSites.length : null,
      exactCarriedImage: recallSites.length ? sum(imEx) / sum(bbEx) : null,
      // Their bootstrap over the pairs, from the rerun's summary (draws are not in the table).
      foundAgreeImage: r.summary.exact?.recall.ci?.found['vlm-image']?.agree ?? null,
      carriedLowImage: r.summary.exact?.recall.ci?.carried['vlm-image']?.low ?? null,
      carriedHighImage: r.summary.exact?.recall.ci?.carried['vlm-image']?.high ?? null,
      pairs: r.summary.pairs,
      recallBackbone: r.summary.recall.topLayers['backbone-text'].join(','),
      recallImage: r.summary.recall.topLayers['vlm-image'].join(','),
      overlapImage: r.summary.comparisons['backbone-text~vlm-image'].overlap,
      overlapText: r.summary.comparisons['backbone-text~vlm-text'].overlap,
      meanAbsError: confirmed.length ? mean(confirmed.map((x) => Math.abs(Number(x.score) - Number(x.exact)))) : null,
      // Reuse from the table: per layer the mean cosine over the pairs (mlp_out at entity-last, image run), then the
      // mean over the backbone's top recall layers.
      reuseImage: mean(
        (r.summary.recall.topLayers['backbone-text'] as number[]).map((l) =>
          mean(recallRows.filter((x) => x.layer === l && x.reuse !== null).map((x) => Number(x.reuse))),
        ),
      ),
    };
  },
  // Lab 1 prints two lines: the cross-patching switch layer and the text probe's resolution layer.
  'lab1-image': (r) => ({ switchLayer: r.summary.switchLayer }),
  'lab1-text': (r) => ({ textResolution: r.summary.resolution.text }),
  lab2: (r) => ({ relChange: r.summary.relChange[0][0], from: r.spec.bands[0][0], to: r.spec.bands[0][1], edges: r.spec.edges[0] }),
  lab3: (r) => ({ bestLayer: r.summary.bestLayer, imageAcc: r.summary.imageAcc, cotAcc: r.summary.cotAcc, textAcc: r.summary.textAcc }),
  // The teaching pair (every paper notebook's last section, lab 4): each spec on both models (SPEC ... model=DIR),
  // one derivation per kind, added below.
};

// The pair's recovery runs patch and ask with chain of thought in one spec: both kinds' numbers.
DERIVE['recovery+cot'] = (r) => ({ ...DERIVE.recovery(r), ...DERIVE.cot(r) });

// Key ids of the pair's runs, one per model (`<kind>-late`, `<kind>-early`), each read with its kind's derivation.
for (const kind of ['recall-gap', 'cross-patch', 'freeze', 'knockout-windows', 'attribution', 'circuit'])
  for (const model of ['late', 'early']) DERIVE[`${kind}-${model}`] = DERIVE[kind];
for (const model of ['late', 'early']) DERIVE[`recovery-${model}`] = DERIVE['recovery+cot'];
for (const id of ['lab4-gap', 'lab4-gap-early']) DERIVE[id] = DERIVE['recall-gap'];
for (const id of ['lab4-switch', 'lab4-switch-early']) DERIVE[id] = DERIVE['lab1-image'];
// Lab 4's circuit: the image run's reuse of the backbone's recall MLPs, derived from the table as notebook 8's is.
for (const id of ['lab4-reuse', 'lab4-reuse-early']) DERIVE[id] = (r) => ({ reuseImage: DERIVE.circuit(r).reuseImage, carriedImage: DERIVE.circuit(r).exactCarriedImage });
// Notebook 2: where the pair's backbone reads the subject, one knockout spec per block k (entity -> last from k on).
for (let k = 0; k < 32; k++) DERIVE[`backbone-read-${k}`] = (r) => ({ baselineAccuracy: r.summary.baselineAccuracy, accuracy: r.summary.accuracy[0][0] });
for (const id of ['probe-transfer-late', 'probe-transfer-early', 'lab4-probe', 'lab4-probe-early']) DERIVE[id] = transferProbe;
// Notebook 5's lag: the layers recomputed from the table's curves with the probe's own rule, the interval from the run.
for (const id of ['probe-lag-late', 'probe-lag-early'])
  DERIVE[id] = (r) => {
    const curve = (m: string) => r.table.objects().filter((x) => x.modality === m).sort((a, b) => a.layer - b.layer);
    const at = (m: string) => resolutionLayer(curve(m).map((x) => Number(x.layer)), curve(m).map((x) => Number(x.testAcc)), { threshold: Number(r.spec.threshold), thresholdOf: r.spec.thresholdOf });
    const lag = r.summary.resolutionCI.lag.transfer;
    return { text: at('text'), image: at('transfer'), low: lag.low, high: lag.high };
  };
