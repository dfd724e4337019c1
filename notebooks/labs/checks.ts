// Self-checks for the four labs. Each check measures the answer live with the library (the lab's model, data and
// spec), compares the student's answer with it, and says whether it is right without giving the answer away.
// Cells pass `hs` in (the kernel's library handle), so this file needs nothing but the library's public calls.

/** What a check needs: the library handle of the notebook (`hs`), the loaded model and the dataset. */
export interface LabContext {
  // The library is typed loosely in cells (kernel/cell-api.d.ts); so it is here.
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  hs: any;
  model: unknown;
  data: unknown;
  /** Text-only backbone folder (lab 3). */
  backbone?: string;
  /**
   * The factual questions asked (spec `questions`): toyworld's held-out pairs, `{ where: { vqa_split: 'heldout' } }`,
   * or null / absent for every question (real PopVQA has no vqa_split column). Labs 2 and 3 ask factual questions.
   */
  questions?: { where: Record<string, string | string[]> } | null;
  /** The chain-of-thought suffix (spec `cotSuffix`: one string, or one per entity type); null / absent: the library's. */
  cotSuffix?: string | Record<string, string> | null;
  /**
   * The chat format the backbone is asked in (recall-gap's `backboneTemplate`, lab 4): toyworld's backbone learnt
   * its facts as `USER: ... ASSISTANT: ...` ('llava-1.5'); null / absent: the library's default ('plain').
   */
  backboneTemplate?: string | null;
}

/** The spec fields a context sets: `questions` and `cotSuffix` only when given, so plain specs stay as they were. */
function scoped(ctx: LabContext, cot = false): Record<string, unknown> {
  return { ...(ctx.questions ? { questions: ctx.questions } : {}), ...(cot && ctx.cotSuffix ? { cotSuffix: ctx.cotSuffix } : {}) };
}

export type Status = 'pass' | 'fail' | 'missing';

export interface CheckLine {
  name: string;
  status: Status;
  message: string;
}

export interface CheckReport<S> {
  passed: boolean;
  lines: CheckLine[];
  /** The measured values the answers were checked against. */
  solution: S;
}

const MARK: Record<Status, string> = { pass: '✔', fail: '✘', missing: '…' };

function report<S>(title: string, lines: CheckLine[], solution: S, quiet = false): CheckReport<S> {
  const passed = lines.every((l) => l.status === 'pass');
  if (!quiet) {
    console.log(`${title}: ${passed ? 'all correct' : `${lines.filter((l) => l.status === 'pass').length} of ${lines.length} correct`}`);
    for (const l of lines) console.log(`  ${MARK[l.status]} ${l.name}: ${l.message}`);
  }
  return { passed, lines, solution };
}

// Results are memoised per model, data and spec: checking twice does not run the experiment twice.
const memo = new WeakMap<object, Map<string, Promise<Result>>>();

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Result = { kind: string; spec: Record<string, unknown>; table: any; summary: any };

export function runMemo(ctx: LabContext, spec: Record<string, unknown>): Promise<Result> {
  const owner = ctx.model as object;
  let m = memo.get(owner);
  if (!m) memo.set(owner, (m = new Map()));
  const k = JSON.stringify(spec) + '|' + String(typeof ctx.data === 'string' ? ctx.data : '');
  let p = m.get(k);
  if (!p) {
    p = ctx.hs.runExperiment(spec, { model: ctx.model, data: ctx.data }) as Promise<Result>;
    p.catch(() => m!.delete(k));
    m.set(k, p);
  }
  return p;
}

/** An integer layer answer against a measured layer, within ±tol. */
export function layerLine(name: string, answer: number | null | undefined, measured: number | null, tol = 1): CheckLine {
  if (answer === null || answer === undefined) return { name, status: 'missing', message: 'not answered yet' };
  if (!Number.isInteger(answer)) return { name, status: 'fail', message: `${answer} is not a layer index (0, 1, 2, ...)` };
  if (measured === null) {
    return { name, status: 'fail', message: 'the measurement never reaches its threshold on this model: the answer is "never" (null)' };
  }
  const d = answer - measured;
  if (Math.abs(d) <= tol) return { name, status: 'pass', message: `${answer} is within ±${tol} of the measured layer` };
  return { name, status: 'fail', message: `${answer} is too ${d < 0 ? 'early' : 'late'}: look again at where the curve crosses` };
}

function choiceLine<T extends string | boolean>(name: string, answer: T | null | undefined, measured: T, why: string): CheckLine {
  if (answer === null || answer === undefined) return { name, status: 'missing', message: 'not answered yet' };
  return answer === measured
    ? { name, status: 'pass', message: `right: ${why}` }
    : { name, status: 'fail', message: 'not what the measurement says: look again at the figure' };
}

// ─────────────────────────────────────────────────────────────────── Lab 1: where is the entity recognised?

/**
 * Hop 1 in the image condition: cross-patching (a donor's image-token states written into a target's run at one
 * layer); the switch layer is where the answer stops following the patched image tokens. Same-type donors: a
 * donor of another type is hardly ever named in the target's answer frame ("The subject in this image is ..."
 * with a landmark's image), so those runs could only count for the target and would pull the switch layer early.
 */
export const LAB1_CROSSPATCH = { kind: 'cross-patch', version: 1, donors: 'same', donorsPerTarget: 5, limit: 16, seed: 1, batchSize: 32 } as const;
/** The text condition: a linear probe per layer for entity identity at the last prompt token of prompts naming it. */
export const LAB1_PROBE = { kind: 'probe', version: 1, modality: 'text', position: 'last', limit: 20, seed: 1, batchSize: 32 } as const;

export interface Lab1Answer {
  /** Image: the layer where the answer stops following the image tokens (cross-patching switch layer). */
  switchLayer?: number | null;
  /** Text: the first layer whose held-out probe accuracy reaches the threshold. */
  textLayer?: number | null;
  /** Which is done first: the entity resolved from the text, or read out of the image tokens? */
  earlier?: 'image' | 'text' | 'same' | null;
}

export interface Lab1Solution {
  switchLayer: number | null;
  textResolution: number | null;
  earlier: 'image' | 'text' | 'same';
  threshold: number;
}

export async function lab1Solution(ctx: LabContext): Promise<Lab1Solution> {
  const [xp, pr] = [await runMemo(ctx, { ...LAB1_CROSSPATCH }), await runMemo(ctx, { ...LAB1_PROBE })];
  const img = xp.summary.switchLayer as number | null;
  const txt = pr.summary.resolution.text as number | null;
  const rank = (x: number | null) => (x === null ? Infinity : x);
  const earlier = rank(img) === rank(txt) ? 'same' : rank(img) < rank(txt) ? 'image' : 'text';
  return { switchLayer: img, textResolution: txt, earlier, threshold: Number(pr.spec.threshold) };
}

export async function checkLab1(ctx: LabContext, a: Lab1Answer, opts: { quiet?: boolean } = {}): Promise<CheckReport<Lab1Solution>> {
  const s = await lab1Solution(ctx);
  return report(
    'Lab 1',
    [
      layerLine('image: switch layer', a.switchLayer, s.switchLayer),
      layerLine('text: resolution layer', a.textLayer, s.textResolution),
      choiceLine('which is done first', a.earlier, s.earlier, s.earlier === 'same' ? 'both at the same layer' : `the ${s.earlier} condition gets there first`),
    ],
    s,
    opts.quiet,
  );
}

// ─────────────────────────────────────────────────────────────────── Lab 2: design a knockout that breaks the answer

/** Image questions of 4 entities, whether or not the model identifies them (the answer must break either way). */
export const LAB2_BASE = { kind: 'knockout', version: 1, limit: 4, seed: 1, batchSize: 32, accuracy: false, identifiedOnly: false } as const;
export const LAB2_EDGES = ['image->last', 'image->query', 'last->last'] as const;
export type Lab2Edge = (typeof LAB2_EDGES)[number];
/** The answer counts as broken when the original answer's probability falls by at least half. */
export const LAB2_GOAL = -0.5;

/** The knockout spec of lab 2 for some edge sets and bands, on the context's questions. */
export function lab2Spec(ctx: LabContext, edges: string[], bands: [number, number][]): Record<string, unknown> {
  return { ...LAB2_BASE, ...scoped(ctx), edges, bands };
}

export interface Lab2Answer {
  edges?: Lab2Edge | null;
  /** First and last blocked layer (inclusive). */
  from?: number | null;
  to?: number | null;
}

export interface Lab2Solution {
  /** At most this many layers may be blocked: half the model, rounded up. */
  maxWidth: number;
  /** The strongest design of maxWidth layers, per edge set, and overall. */
  best: { edges: Lab2Edge; from: number; to: number; relChange: number };
  bestPerEdge: Record<string, { from: number; to: number; relChange: number }>;
  /** Relative change a design must reach: LAB2_GOAL, or 80% of the best achievable change when the goal is out of reach. */
  goal: number;
}

/** Every band of exactly `width` consecutive layers: blocking more layers rarely hurts less, so the strongest
 * design within the budget is (nearly always) one of these; a narrower design that does as well passes too. */
function bandsOf(numLayers: number, width: number): [number, number][] {
  const out: [number, number][] = [];
  for (let a = 0; a + width - 1 < numLayers; a++) out.push([a, a + width - 1]);
  return out;
}

export async function lab2Solution(ctx: LabContext): Promise<Lab2Solution> {
  const L = (ctx.model as { numLayers: number }).numLayers;
  const maxWidth = Math.ceil(L / 2);
  const bands = bandsOf(L, maxWidth);
  const r = await runMemo(ctx, lab2Spec(ctx, [...LAB2_EDGES], bands));
  const bestPerEdge: Lab2Solution['bestPerEdge'] = {};
  let best: Lab2Solution['best'] | null = null;
  (r.summary.edgeSets as string[]).forEach((e, i) => {
    (r.summary.relChange[i] as number[]).forEach((v, j) => {
      const [from, to] = bands[j];
      if (!Number.isFinite(v)) return;
      if (!bestPerEdge[e] || v < bestPerEdge[e].relChange) bestPerEdge[e] = { from, to, relChange: v };
      if (!best || v < best.relChange) best = { edges: e as Lab2Edge, from, to, relChange: v };
    });
  });
  if (!best) throw new Error('lab 2: the knockout sweep produced no finite relative change');
  const b = best as Lab2Solution['best'];
  return { maxWidth, best: b, bestPerEdge, goal: b.relChange <= LAB2_GOAL ? LAB2_GOAL : 0.8 * b.relChange };
}

export interface Lab2Measured {
  relChange: number;
}

/** Runs the student's design with the library and checks it breaks the answer within the layer budget. */
export async function checkLab2(ctx: LabContext, a: Lab2Answer, opts: { quiet?: boolean } = {}): Promise<CheckReport<Lab2Solution & { yours: number | null }>> {
  const s = await lab2Solution(ctx);
  const L = (ctx.model as { numLayers: number }).numLayers;
  const lines: CheckLine[] = [];
  let yours: number | null = null;
  if (!a.edges || a.from == null || a.to == null) lines.push({ name: 'knockout design', status: 'missing', message: 'set edges, from and to' });
  else if (!(LAB2_EDGES as readonly string[]).includes(a.edges)) lines.push({ name: 'knockout design', status: 'fail', message: `edges must be one of ${LAB2_EDGES.join(', ')}` });
  else if (!Number.isInteger(a.from) || !Number.isInteger(a.to) || a.from < 0 || a.to >= L || a.from > a.to)
    lines.push({ name: 'knockout design', status: 'fail', message: `from and to must be layers with 0 <= from <= to <= ${L - 1}` });
  else if (a.to - a.from + 1 > s.maxWidth)
    lines.push({ name: 'knockout design', status: 'fail', message: `${a.to - a.from + 1} layers blocked; the budget is ${s.maxWidth}: make the band narrower` });
  else {
    const r = await runMemo(ctx, lab2Spec(ctx, [a.edges], [[a.from, a.to]]));
    yours = r.summary.relChange[0][0] as number;
    const ok = yours <= s.goal;
    lines.push({
      name: 'knockout design',
      status: ok ? 'pass' : 'fail',
      message: ok
        ? s.goal === LAB2_GOAL
          ? `blocking ${a.edges} in layers ${a.from}-${a.to} changes the answer's probability by ${(yours * 100).toFixed(0)}%: broken`
          : `blocking ${a.edges} in layers ${a.from}-${a.to} changes the answer's probability by ${(yours * 100).toFixed(1)}%: as strong as knockouts within the budget get on this model (the -50% goal is out of its reach)`
        : `blocking ${a.edges} in layers ${a.from}-${a.to} changes the answer's probability by only ${(yours * 100).toFixed(1)}% (needed: ${(s.goal * 100).toFixed(1)}% or less); try another edge set or other layers`,
    });
  }
  return report('Lab 2', lines, { ...s, yours }, opts.quiet);
}

// ─────────────────────────────────────────────────────────────────── Lab 3: recover the answer

/** All 8 sampled entities: the patch supplies the entity's identity, whether or not the VLM identifies the image. */
export const LAB3_RECOVERY = { kind: 'recovery', version: 1, cot: true, identifiedOnly: false, limit: 8, seed: 1, batchSize: 32 } as const;

/** The recovery spec of lab 3: the backbone sweep and chain of thought, on the context's questions and suffix. */
export function lab3Spec(ctx: LabContext): Record<string, unknown> {
  if (!ctx.backbone) throw new Error('lab 3 needs the backbone folder: pass {hs, model, data, backbone: BACKBONE_DIR}');
  return { ...LAB3_RECOVERY, ...scoped(ctx, true), backbone: ctx.backbone };
}

export interface Lab3Answer {
  /** The layer where patching the backbone's entity state into the VLM recovers the most accuracy. */
  bestLayer?: number | null;
  /** Does asking the model to name the entity first (chain of thought) beat the direct image question? */
  cotHelps?: boolean | null;
}

export interface Lab3Solution {
  bestLayer: number | null;
  imageAcc: number;
  textAcc: number;
  cotAcc: number;
  patchedAcc: number[];
  cotHelps: boolean;
}

export async function lab3Solution(ctx: LabContext): Promise<Lab3Solution> {
  const r = await runMemo(ctx, lab3Spec(ctx));
  const s = r.summary;
  return { bestLayer: s.bestLayer, imageAcc: s.imageAcc, textAcc: s.textAcc, cotAcc: s.cotAcc, patchedAcc: s.patchedAcc, cotHelps: s.cotAcc > s.imageAcc };
}

export async function checkLab3(ctx: LabContext, a: Lab3Answer, opts: { quiet?: boolean } = {}): Promise<CheckReport<Lab3Solution>> {
  const s = await lab3Solution(ctx);
  return report(
    'Lab 3',
    [
      layerLine('best layer to patch the backbone state', a.bestLayer, s.bestLayer),
      choiceLine('chain of thought helps', a.cotHelps, s.cotHelps, s.cotHelps ? 'naming the entity first is more accurate than the direct question' : 'naming the entity first is not more accurate here'),
    ],
    s,
    opts.quiet,
  );
}

// ─────────────────────────────────────────────────────────────────── Lab 4: too late, or in time?

/**
 * Two VLMs on one backbone that differ mainly in where their image states hold the entity ("Too Late to Recall"):
 * the recall gap of each on the held-out pairs; the transfer probe (fit on text prompts, read on image prompts at
 * the last image token), which says how far the image becomes the LM's own state for the name; and the
 * cross-patching switch (lab 1's spec), the layer where the answer stops following the image tokens: hop 1's end.
 */
export const LAB4_GAP = { kind: 'recall-gap', version: 1, limit: 24, seed: 1, batchSize: 32 } as const;
export const LAB4_PROBE = { kind: 'probe', version: 1, position: 'last-image', transfer: true, limit: 32, seed: 1, batchSize: 32 } as const;
export const LAB4_CROSSPATCH = LAB1_CROSSPATCH;
/**
 * The recall circuit against each model's own backbone (the folder's, or `backbone` of the context): the pairs of
 * notebook 8's first section (14 on toyworld; its pair section takes the data card's 46, on which the bootstrap
 * intervals of the carried share no longer meet: data/teaching/README.md, session 35). Its `summary.recall.reuse['vlm-image']` is what the image run writes at the backbone's recall MLPs
 * against what the backbone writes there for the name (cosine; 1 = the same computation). `topK` above any model's
 * sites (layers × 2 components × 4 groups) re-measures every site by exact patching, so `summary.exact.recall.
 * carried['vlm-image']` is the share of the backbone's effect at its recall MLPs that patching them moves in the
 * image run (on a 7B model that is a few thousand patched runs: a GPU's work).
 */
export const LAB4_CIRCUIT = { kind: 'circuit', version: 1, limit: 16, seed: 1, topK: 1000, k: 10 } as const;

/** The two models of lab 4, each a lab context (same data and questions). */
export interface Lab4Context {
  late: LabContext;
  early: LabContext;
}

/** Lab 4's specs that ask the backbone: the lab's questions, and the backbone's chat format when the context names one. */
function askingBackbone(ctx: LabContext): Record<string, unknown> {
  return { ...scoped(ctx), ...(ctx.backboneTemplate ? { backboneTemplate: ctx.backboneTemplate } : {}) };
}

export function lab4GapSpec(ctx: LabContext): typeof LAB4_GAP & Record<string, unknown> {
  return { ...LAB4_GAP, ...askingBackbone(ctx) };
}

export function lab4CircuitSpec(ctx: LabContext): typeof LAB4_CIRCUIT & Record<string, unknown> {
  return { ...LAB4_CIRCUIT, backbone: ctx.backbone ?? null, ...askingBackbone(ctx) };
}

type Pair<T> = { late: T; early: T };

export interface Lab4Answer {
  /** Which model loses more accuracy from the text question to the image question? */
  largerGap?: 'late' | 'early' | null;
  /** Whose image reads more like the LM's state for the name (whose transfer curve gets higher)? */
  higherTransfer?: 'late' | 'early' | null;
  /** Which model's answer follows its image tokens to a later layer (cross-patching switch)? */
  laterSwitch?: 'late' | 'early' | 'same' | null;
  /** The late model's switch layer. */
  lateSwitch?: number | null;
  /** Whose image run writes more of what the backbone writes at its recall MLPs (the reuse map)? */
  moreReuse?: 'late' | 'early' | null;
  /** Patched exactly, at the backbone's recall MLPs, whose answer from the image moves more (the carried share)? */
  moreCarried?: 'late' | 'early' | null;
}

export interface Lab4Solution {
  drop: Pair<number>;
  imageAcc: Pair<number>;
  textAcc: Pair<number>;
  /** First layer at the probe's threshold (null: never). */
  resolution: Pair<number | null>;
  transfer: Pair<number[]>;
  /** The layer of each transfer curve's maximum (the first, on a tie). */
  peak: Pair<number>;
  /** Cross-patching switch layers (null: the answer never leaves the donor). */
  switchLayer: Pair<number | null>;
  largerGap: 'late' | 'early';
  higherTransfer: 'late' | 'early';
  laterSwitch: 'late' | 'early' | 'same';
  /** Mean reuse of the backbone's recall MLPs by the image run (null: no pair gave one). */
  reuse: Pair<number | null>;
  /** The backbone's recall layers (MLPs at the entity's last token), per model's run. */
  recallLayers: Pair<number[]>;
  moreReuse: 'late' | 'early' | null;
  /** Share of the backbone's exact effect at its recall MLPs that the image run carries (null: not every site measured, or no recall MLP among the backbone's top sites). */
  carried: Pair<number | null>;
  moreCarried: 'late' | 'early' | null;
}

/** The layer of a curve's maximum (the first, on a tie); `layers` maps its index to the layer. */
function peakLayer(curve: number[], layers: number[]): number {
  let best = 0;
  curve.forEach((v, i) => {
    if (v > curve[best]) best = i;
  });
  return layers[best];
}

export async function lab4Solution(ctx: Lab4Context): Promise<Lab4Solution> {
  const gap = { late: await runMemo(ctx.late, lab4GapSpec(ctx.late)), early: await runMemo(ctx.early, lab4GapSpec(ctx.early)) };
  const probe = { late: await runMemo(ctx.late, { ...LAB4_PROBE }), early: await runMemo(ctx.early, { ...LAB4_PROBE }) };
  const xp = { late: await runMemo(ctx.late, { ...LAB4_CROSSPATCH }), early: await runMemo(ctx.early, { ...LAB4_CROSSPATCH }) };
  const circ = { late: await runMemo(ctx.late, lab4CircuitSpec(ctx.late)), early: await runMemo(ctx.early, lab4CircuitSpec(ctx.early)) };
  const reuse = { late: (circ.late.summary.recall.reuse['vlm-image'] ?? null) as number | null, early: (circ.early.summary.recall.reuse['vlm-image'] ?? null) as number | null };
  const carriedOf = (c: { summary: any }) => (c.summary.exact?.recall.carried['vlm-image'] ?? null) as number | null;
  const carried = { late: carriedOf(circ.late), early: carriedOf(circ.early) };
  const drop = { late: gap.late.summary.drop as number, early: gap.early.summary.drop as number };
  const transfer = { late: probe.late.summary.transfer as number[], early: probe.early.summary.transfer as number[] };
  const switchLayer = { late: xp.late.summary.switchLayer as number | null, early: xp.early.summary.switchLayer as number | null };
  // A model whose answer never leaves the donor reads its image to the end: later than any layer.
  const rank = (x: number | null) => (x === null ? Infinity : x);
  return {
    drop,
    imageAcc: { late: gap.late.summary.imageAcc, early: gap.early.summary.imageAcc },
    textAcc: { late: gap.late.summary.textAcc, early: gap.early.summary.textAcc },
    resolution: { late: probe.late.summary.resolution.transfer, early: probe.early.summary.resolution.transfer },
    transfer,
    peak: { late: peakLayer(transfer.late, probe.late.summary.layers), early: peakLayer(transfer.early, probe.early.summary.layers) },
    switchLayer,
    largerGap: drop.late >= drop.early ? 'late' : 'early',
    higherTransfer: Math.max(...transfer.late) > Math.max(...transfer.early) ? 'late' : 'early',
    laterSwitch: rank(switchLayer.late) === rank(switchLayer.early) ? 'same' : rank(switchLayer.late) > rank(switchLayer.early) ? 'late' : 'early',
    reuse,
    recallLayers: { late: circ.late.summary.recall.topLayers['backbone-text'], early: circ.early.summary.recall.topLayers['backbone-text'] },
    // No answer to check when a model gave no cosine (no pair, or a backbone of another width).
    moreReuse: reuse.late === null || reuse.early === null ? null : reuse.late > reuse.early ? 'late' : 'early',
    carried,
    moreCarried: carried.late === null || carried.early === null ? null : carried.late > carried.early ? 'late' : 'early',
  };
}

export async function checkLab4(ctx: Lab4Context, a: Lab4Answer, opts: { quiet?: boolean } = {}): Promise<CheckReport<Lab4Solution>> {
  const s = await lab4Solution(ctx);
  return report(
    'Lab 4',
    [
      choiceLine('the model with the larger gap', a.largerGap, s.largerGap, `its image answers fall ${(100 * Math.max(s.drop.late, s.drop.early)).toFixed(0)} points below its text answers`),
      choiceLine('whose image reads more like the name', a.higherTransfer, s.higherTransfer, `its transfer curve reaches ${Math.max(...s.transfer[s.higherTransfer]).toFixed(2)}`),
      choiceLine('which model reads its image tokens later', a.laterSwitch, s.laterSwitch, s.laterSwitch === 'same' ? 'both switch at the same layer' : `the ${s.laterSwitch} model's answer follows its image to a later layer`),
      layerLine("the late model's switch layer", a.lateSwitch, s.switchLayer.late),
      s.moreReuse === null
        ? { name: "whose image run reuses the backbone's recall MLPs", status: 'missing', message: 'no reuse was measured (no clean/corrupt pair, or a backbone of another width)' }
        : choiceLine("whose image run reuses the backbone's recall MLPs", a.moreReuse, s.moreReuse, `its image run writes there ${s.reuse[s.moreReuse]!.toFixed(2)} of what the backbone writes for the name (cosine), the other's ${s.reuse[s.moreReuse === 'late' ? 'early' : 'late']!.toFixed(2)}`),
      s.moreCarried === null
        ? { name: "whose answer from the image moves more, patched at the backbone's recall MLPs", status: 'missing', message: 'not measured (not every site re-measured exactly, or no recall MLP among the backbone\'s top sites)' }
        : choiceLine("whose answer from the image moves more, patched at the backbone's recall MLPs", a.moreCarried, s.moreCarried, `its image run carries ${s.carried[s.moreCarried]!.toFixed(2)} of the backbone's effect there, the other's ${s.carried[s.moreCarried === 'late' ? 'early' : 'late']!.toFixed(2)}`),
    ],
    s,
    opts.quiet,
  );
}
