// `hopscope demo`: the main job. Loads the built-in teaching pair (the late model, and the early one next to it:
// issue 15) and runs every analysis of the two papers (recall gap, cross-patching, freezing, knockout, logit
// lens, probes, attribution, recovery, circuit) on the toyworld data, writing CSV/Arrow tables, summary.json and
// one self-contained HTML report (viewable offline) with both models side by side in every section.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { Worker } from 'node:worker_threads';
import { fromArrow } from 'arquero';
import { SingleBar, Presets } from 'cli-progress';
import type { Command } from 'commander';
import { parse } from 'csv-parse/sync';
import { describeEngine, initEngine } from '../engine/backend';
import { startModuleWorker } from '../engine/module-worker';
import { HELDOUT_QUESTIONS, TOYWORLD_BACKBONE_TEMPLATE } from '../data/toyworld';
import { TEACHING_COMPARE_DIR, TEACHING_DIR, TEACHING_MODELS, isTeachingDir, teachingModelDir } from '../data/teaching-models';
import { InputError } from '../errors';
import { backboneDirOf, compareResults, experimentDefinitions, loadModelWithAssets, runExperiment, siteCount, viewFromResult, type ExperimentResult } from '../experiments';
import type { Model } from '../models/model';
import { renderStaticPage, type StaticSection } from '../report/static-page';
import { htmlSummary, htmlTable, writeTable } from '../report/tables';
import type { DemoWorkerData, DemoWorkerMessage } from './demo-worker';

export const REPO_ROOT = path.resolve(__dirname, '..', '..');
export const TOYWORLD = path.join(REPO_ROOT, 'data', 'toyworld');
/**
 * Entities per experiment. 16, not 8: with two models side by side, 8 left the late / early contrast inside the
 * sampling noise (recall gap 0.60 against 0.69 image accuracy, circuit overlaps reversed); 16 gives 0.48 against
 * 0.72 and takes 45–57 s for both on 2 cores (sessions 14–15), under the 60 s of issue 15 with a thin margin; on the
 * 12-layer pair (session 31) the 18 analyses took 47 s, 56 s with the process's start, in one thread; with the
 * second model in a worker thread on the other core (session 32), 31–32 s and 34 s.
 */
export const DEMO_LIMIT = 16;

/** Said under the recall-gap figure when only held-out pairs are asked. */
const HELDOUT_NOTE =
  " Only the (entity, relation) pairs held out of the teaching model's visual instruction tuning are asked (questions.csv vqa_split = heldout): " +
  'the model learnt these facts from text alone and never answered them about an image, so the image condition needs both hops, as in the papers.';

/** The report text of one section (`heldout`: its factual questions are the held-out pairs only). */
export function explain(kind: string, heldout: boolean): string {
  // Each kind's text is its definition's `explain` (src/experiments/registry.ts).
  const base = experimentDefinitions().find((d) => d.kind === kind)?.explain ?? '';
  if (!heldout) return base;
  return base + (kind === 'recall-gap' ? HELDOUT_NOTE : ' Factual questions: the pairs held out of visual instruction tuning only (vqa_split = heldout).');
}

export interface DemoSpec {
  kind: string;
  version: 1;
  [k: string]: unknown;
}

export { HELDOUT_QUESTIONS };

/** Whether a PopVQA-format folder's questions.csv has toyworld's `vqa_split` column (real PopVQA has none). */
export function hasVqaSplit(dataDir: string): boolean {
  const file = path.join(dataDir, 'questions.csv');
  if (!fs.existsSync(file)) return false;
  const [header] = parse(fs.readFileSync(file, 'utf8'), { bom: true, to_line: 1 }) as string[][];
  return (header ?? []).some((c) => c.trim() === 'vqa_split');
}

/**
 * The demo's specs: every experiment, sized to finish in well under a minute on 2 CPU cores. When the
 * data marks the held-out pairs (`vqa_split`), the experiments that answer factual questions (recall-gap,
 * freeze's early/late split, knockout, recovery) ask only those: the recall gap is measured on pairs the
 * model never saw with an image. Probe, logit-lens and attribution use identification and naming prompts.
 * `numLayers`: the model's depth. On a teaching model (a folder of TEACHING_MODELS) the circuit then re-measures
 * every site by exact patching (12 layers: 96 sites, 10–15 s more per model), so its figure draws measured effects:
 * the attribution estimate misleads at the site that separates the pair (layer 0's MLP at the entity's last token,
 * where the late image run's estimate has the other sign from its effect; data/teaching/README.md, session 33). On
 * a real model that would be thousands of patched runs: the top sites only.
 */
export function demoSpecs(modelDir: string, limit: number, dataDir: string = TOYWORLD, numLayers?: number): DemoSpec[] {
  const backbone = backboneDirOf(modelDir);
  const q = hasVqaSplit(dataDir) ? { questions: HELDOUT_QUESTIONS } : {};
  // toyworld (it has vqa_split) teaches its backbone in the chat format; real PopVQA backbones are asked plainly.
  const bbTemplate = hasVqaSplit(dataDir) ? { backboneTemplate: TOYWORLD_BACKBONE_TEMPLATE } : {};
  // Sizes and data choices per kind; the kinds themselves are the registry's demo members, in its order.
  const sized: Record<string, Record<string, unknown>> = {
    'recall-gap': { limit: limit * 4, ...q, ...bbTemplate },
    'cross-patch': { limit },
    freeze: { limit, ...q },
    knockout: { limit, ...q },
    'logit-lens': { limit: 2 },
    // The transfer probe (fit on text, read on the image) says whether the image has become the LM's state for the
    // name; a probe fit on image prompts reads the entity from any feature, 100 % from layer 0 on every teaching model.
    probe: { limit: limit * 4, transfer: true },
    attribution: { limit: 2 },
    recovery: { limit, backbone, ...q, ...cotSuffixOf(dataDir), ...bbTemplate },
    // Same-type pairs asked one relation: `limit` entities give about limit / 2 pairs.
    circuit: { limit: limit * 2, backbone, ...q, ...bbTemplate, ...(numLayers !== undefined && isTeachingDir(modelDir) ? { topK: siteCount(numLayers) } : {}) },
  };
  return experimentDefinitions()
    .filter((d) => d.demo)
    .map((d) => ({ kind: d.kind, version: 1 as const, ...(sized[d.kind] ?? { limit }) }));
}

/** toyworld's chain-of-thought wording per entity type (templates.json), the one the teaching model was tuned on. */
function cotSuffixOf(dataDir: string): { cotSuffix?: Record<string, string> } {
  const file = path.join(dataDir, 'templates.json');
  if (!fs.existsSync(file)) return {};
  const t = JSON.parse(fs.readFileSync(file, 'utf8')) as { cotSuffix?: Record<string, string> };
  return t.cotSuffix ? { cotSuffix: t.cotSuffix } : {};
}

export interface DemoOptions {
  model?: string;
  /**
   * A second model run on the same specs, drawn next to the first in each section (e.g. two VLMs that resolve the entity
   * at different depths: the same analyses side by side). Unset with no `model`: the early teaching model next to
   * the default (late) one, the contrast of issue 15; unset with a `model`, or `false`: no second model.
   */
  compare?: string | false;
  data?: string;
  out?: string;
  limit?: number;
  only?: string[];
  progress?: boolean;
  /**
   * Runs the second model in a worker thread on another core while this thread runs the first (default: with a
   * second model and two cores or more). The numbers are the same either way (test/cli/demo.test.ts).
   */
  parallel?: boolean;
  /** Called after each experiment (tests, notebooks). */
  onResult?(r: ExperimentResult): void;
}

export interface DemoOutput {
  outDir: string;
  report: string;
  /** Every result, the first model's then (with `compare`) the second's, per kind. */
  results: ExperimentResult[];
  seconds: number;
  /** Analyses that failed (their error is in the report and summary.json). */
  failures: { kind: string; message: string }[];
}

export async function runDemo(opts: DemoOptions = {}): Promise<DemoOutput> {
  const t0 = performance.now();
  const modelDir = opts.model ?? TEACHING_DIR;
  const compare = opts.compare === false ? undefined : (opts.compare ?? (opts.model === undefined ? TEACHING_COMPARE_DIR : undefined));
  const dataDir = opts.data ?? TOYWORLD;
  const outDir = opts.out ?? path.join(process.cwd(), 'out', 'demo');
  if (!fs.existsSync(path.join(modelDir, 'config.json')))
    throw new InputError(`${modelDir} holds no model (config.json missing): pass --model DIR or train one with \`hopscope train\``);
  const parallel = compare !== undefined && (opts.parallel ?? os.availableParallelism() >= 2);
  // Side by side, each model gets one thread (an engine already started keeps its own).
  const engine = await initEngine(parallel ? { threads: 1 } : {});
  const log = (s: string): void => void process.stderr.write(`hopscope: ${s}\n`);
  log(describeEngine(engine));
  const dirs = [modelDir, ...(compare ? [compare] : [])];
  for (const d of dirs) if (!fs.existsSync(path.join(d, 'config.json'))) throw new InputError(`${d} holds no model (config.json missing)`);
  const models: Model[] = [];
  const label = (d: string) => escapeHtml(path.relative(REPO_ROOT, d) || d);
  // Each model's name on the shared figures: its folder's name ("late", "early"), or its path where two share one.
  const base = dirs.map((d) => path.basename(path.resolve(d)));
  const names = dirs.map((d, i) => (new Set(base).size === base.length ? base[i] : `${path.relative(REPO_ROOT, d) || d}${dirs.indexOf(d) !== i ? ` (${i + 1})` : ''}`));
  const heldout = hasVqaSplit(dataDir);
  const results: ExperimentResult[] = [];
  try {
    for (const d of dirs) models.push(loadModelWithAssets(d));
  } catch (e) {
    for (const m of models) m.dispose();
    throw e;
  }
  const model = models[0];
  const sections: StaticSection[] = [
    {
      html:
        `<p>The model <code>${label(modelDir)}</code> (${model.numLayers} layers, ` +
        `d_model ${model.dModel})${compare ? `, next to <code>${label(compare)}</code> (${models[1].numLayers} layers) in every section,` : ''} on the toyworld data. Every figure below is drawn from the tables next to this page ` +
        `(<code>*.csv</code>, <code>*.arrow</code>); <code>summary.json</code> holds the key numbers.` +
        (heldout
          ? ` Factual questions are asked only on the (entity, relation) pairs held out of visual instruction tuning ` +
            `(<code>questions.csv</code> column <code>vqa_split</code> = <code>heldout</code>), which the model never saw with an image.`
          : '') +
        `</p>`,
    },
  ];
  const failures: { kind: string; message: string }[] = [];
  const summary: Record<string, unknown> = {
    model: modelDir,
    ...(compare ? { compare } : {}),
    data: dataDir,
    backend: engine.provider,
    threads: engine.threads,
    // The factual questions the question-answering experiments asked.
    questions: heldout ? HELDOUT_QUESTIONS : null,
  };
  const specsOf = dirs.map((d, i) => demoSpecs(d, opts.limit ?? DEMO_LIMIT, dataDir, models[i].numLayers));
  const wanted = (spec: DemoSpec) => !opts.only || opts.only.includes(spec.kind);
  const remote = parallel ? new CompareWorker({ modelDir: compare!, dataDir, specs: [...specsOf[1].entries()].filter(([, s]) => wanted(s)) }) : null;
  try {
    for (const [k, spec] of specsOf[0].entries()) {
      if (!wanted(spec)) continue;
      const cols: { html: string; view: ReturnType<typeof viewFromResult> | null; result: ExperimentResult | null }[] = [];
      for (const [mi, m] of models.entries()) {
        const mSpec = specsOf[mi][k];
        const tag = mi === 0 ? spec.kind : `${spec.kind}-compare`;
        const fromWorker = remote && mi === 1;
        const bar = opts.progress === false || fromWorker ? null : new SingleBar({ format: `${tag.padEnd(12)} {bar} {value}/{total} {phase}`, stream: process.stderr, hideCursor: true }, Presets.shades_classic);
        bar?.start(1, 0, { phase: '' });
        const t = performance.now();
        let result: ExperimentResult;
        let seconds: number;
        try {
          if (fromWorker) {
            const r = await remote.result(k);
            result = r.result;
            seconds = r.seconds;
          } else {
            result = await runExperiment(mSpec, {
              model: m,
              data: dataDir,
              onProgress: (ev) => {
                bar?.setTotal(Math.max(ev.total, 1));
                bar?.update(ev.done, { phase: ev.message ?? '' });
              },
            });
            seconds = (performance.now() - t) / 1000;
          }
        } catch (e) {
          // One failed analysis must not lose the others: record it, show it in the report, go on.
          bar?.stop();
          const message = `${(e as Error).name}: ${(e as Error).message}`;
          log(`${tag} failed: ${message}`);
          failures.push({ kind: tag, message });
          summary[tag] = { error: message };
          cols.push({ html: `<p class="error">${models.length > 1 ? `<code>${label(dirs[mi])}</code>: ` : ''}This analysis failed: ${escapeHtml(message)}</p>`, view: null, result: null });
          continue;
        }
        bar?.stop();
        results.push(result);
        opts.onResult?.(result);
        writeTable(result.table, outDir, tag);
        summary[tag] = { ...scalars(result.summary), seconds: Number(seconds.toFixed(2)) };
        const view = viewFromResult(result);
        cols.push({
          html: (models.length > 1 ? `<h3><code>${label(dirs[mi])}</code></h3>` : '') + htmlSummary(scalars(result.summary)) + (view.view === 'table' ? htmlTable(result.table) : ''),
          view: view.view === 'table' ? null : view,
          result,
        });
      }
      const intro = `<h2>${escapeHtml(spec.kind)}</h2><p>${escapeHtml(explain(spec.kind, spec.questions != null))}</p>`;
      const state = (v: ReturnType<typeof viewFromResult> | null) => (v ? { view: v.view, title: v.title, data: v.data } : undefined);
      if (models.length === 1) {
        const c = cols[0];
        if (c.result) {
          sections.push({ html: intro + c.html, widgetState: state(c.view) as StaticSection['widgetState'] });
          sections.push({ html: `<details><summary>first rows of ${escapeHtml(spec.kind)}.csv</summary>${htmlTable(c.result.table, 8)}</details>` });
        } else sections.push({ html: `<h2>${escapeHtml(spec.kind)}</h2>${c.html}` });
      } else {
        // Both models on one figure (issue 15) when each drew a view, their numbers side by side below it; a
        // failed or undrawable run leaves each model's own column view.
        const drawn = cols.every((c) => c.result && c.view);
        const figure = drawn ? compareResults(Object.fromEntries(cols.map((c, i) => [names[i], c.result!])), spec.kind) : null;
        sections.push({
          html: intro,
          ...(figure ? { widgetState: figure as StaticSection['widgetState'] } : {}),
          columns: cols.map((c) => ({ html: c.html, widgetState: figure ? undefined : (state(c.view) as NonNullable<StaticSection['columns']>[number]['widgetState']) })),
        });
      }
    }
  } finally {
    for (const m of models) m.dispose();
    await remote?.stop();
  }
  const seconds = (performance.now() - t0) / 1000;
  summary.seconds = Number(seconds.toFixed(2));
  fs.mkdirSync(outDir, { recursive: true });
  fs.writeFileSync(path.join(outDir, 'summary.json'), JSON.stringify(summary, null, 2));
  const report = path.join(outDir, 'report.html');
  fs.writeFileSync(report, renderStaticPage({ title: 'hopscope demo: the two-hop analysis on the teaching model', sections }));
  log(`wrote ${report} and ${results.length} tables in ${seconds.toFixed(1)} s`);
  return { outDir, report, results, seconds, failures };
}

/**
 * The second model's analyses, run by src/cli/demo-worker.ts in a worker thread. `result(k)` waits for spec k's;
 * a failed analysis rejects with its own error, and a worker that dies rejects every analysis it had not sent
 * with why, so the report still gets the first model's sections and names what the second model lost.
 */
export class CompareWorker {
  private readonly worker: Worker;
  private readonly got = new Map<number, Exclude<DemoWorkerMessage, { done: true }>>();
  private readonly waiting = new Map<number, () => void>();
  private dead: string | null = null;
  private done = false;

  constructor(data: DemoWorkerData) {
    this.worker = startModuleWorker(path.join(__dirname, `demo-worker${path.extname(__filename)}`), data);
    this.worker.on('message', (m: DemoWorkerMessage) => {
      if ('done' in m) {
        this.done = true;
        return;
      }
      this.got.set(m.index, m);
      this.waiting.get(m.index)?.();
    });
    const stop = (why: string) => {
      if (this.done || this.dead) return;
      this.dead = why;
      for (const wake of this.waiting.values()) wake();
    };
    this.worker.on('error', (e) => stop(`the worker running ${data.modelDir} failed: ${e.message}`));
    this.worker.on('exit', (code) => stop(`the worker running ${data.modelDir} stopped (exit code ${code}) before this analysis`));
  }

  async result(k: number): Promise<{ result: ExperimentResult; seconds: number }> {
    if (!this.got.has(k) && !this.dead) await new Promise<void>((resolve) => this.waiting.set(k, resolve));
    this.waiting.delete(k);
    const m = this.got.get(k);
    if (!m) throw new Error(this.dead!);
    if ('error' in m) throw Object.assign(new Error(m.error.message), { name: m.error.name });
    return { result: { kind: m.kind, spec: m.spec as ExperimentResult['spec'], summary: m.summary as ExperimentResult['summary'], table: fromArrow(m.arrow) }, seconds: m.seconds };
  }

  async stop(): Promise<void> {
    if (!this.done) await this.worker.terminate();
  }
}

function scalars(o: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v === null || ['number', 'string', 'boolean'].includes(typeof v)));
}

function escapeHtml(s: string): string {
  return s.replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c]!);
}

export function registerDemo(program: Command): void {
  program
    .command('demo')
    .description('run every analysis on the built-in teaching pair (late, with early beside it); write an HTML report and CSV/Arrow tables')
    .option('--model <dir>', `model folder, or a teaching model's name (${Object.keys(TEACHING_MODELS).join(', ')})`, 'teaching')
    .option('--data <dir>', 'PopVQA-format data folder', TOYWORLD)
    .option('--out <dir>', 'output folder', 'out/demo')
    .option('--compare <dir>', 'a second model folder (or teaching model name) drawn next to the first in every section (default with the default model: teaching-early)')
    .option('--no-compare', 'no second model')
    .option('--limit <n>', 'entities (targets) per experiment', String(DEMO_LIMIT))
    .option('--only <kinds>', 'comma-separated experiment kinds')
    .action(async (o: { model: string; compare?: string | false; data: string; out: string; limit: string; only?: string }) => {
      // The default model (`teaching`) gets the early one next to it unless --compare or --no-compare says otherwise.
      const model = o.model === 'teaching' ? undefined : teachingModelDir(o.model);
      const compare = typeof o.compare === 'string' ? teachingModelDir(o.compare) : o.compare;
      const out = await runDemo({ model, compare, data: o.data, out: o.out, limit: Number(o.limit), only: o.only?.split(',') });
      if (out.failures.length) process.exitCode = 1;
    });
}
