// The hopscope library as the kernel sees it: the contract the magics code against, loaded lazily on first use
// so kernel start stays fast. HOPSCOPE_LIBRARY points the kernel at another entry (tests use a stand-in, which
// must satisfy `Library`). Views and their kinds are the wire protocol's (src/report/protocol.ts, imported
// type-only), and the real library is checked against this contract at compile time (bottom of this file).
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Progress, ViewKind, WireView } from '../src/report/protocol';

export const REPO_ROOT = path.resolve(__dirname, '..');

export interface HookPointInfo {
  name: string;
  axes: string[];
  part: string;
  layer?: number;
}

export interface Model {
  /** A list, or a method returning it (src/models/model.ts has `hookPoints()`). */
  hookPoints: HookPointInfo[] | (() => HookPointInfo[]);
  numLayers: number;
  dispose(): void;
}

export interface ExperimentSpec {
  kind: string;
  version: 1;
  [field: string]: unknown;
}

export interface ProgressEvent {
  done: number;
  total: number;
  message?: string;
}

export interface ExperimentContext {
  model: Model;
  data?: unknown;
  signal?: AbortSignal;
  /** Run folder for checkpoints (resume). */
  runDir?: string;
  /** redis://HOST:PORT/DB: the patch sweeps run on that queue's workers (docs/cluster.md). */
  queue?: string;
  onProgress?(ev: ProgressEvent): void;
  onPartial?(rows: Record<string, unknown>[]): void;
}

export interface ExperimentResult {
  kind: string;
  spec: ExperimentSpec;
  /** An arquero ColumnTable. */
  table: unknown;
  summary: Record<string, unknown>;
}

/** A result's view as the widget receives it: a view kind of the protocol with its data, or the table fallback. */
export type View = WireView;

export interface EngineInfo {
  provider?: string;
  backend?: string;
  threads?: number;
}

export interface Library {
  initEngine(opts?: { backend?: string; threads?: number }): Promise<EngineInfo>;
  /** The running engine, or null before initEngine. */
  engineInfo(): EngineInfo | null;
  describeEngine(info: EngineInfo): string;
  loadModel(dirOrName: string): Promise<Model>;
  loadDataset(dir: string): Promise<unknown>;
  runExperiment(spec: ExperimentSpec, ctx: ExperimentContext): Promise<ExperimentResult>;
  /** Throws SpecError naming the field; returns the spec with defaults filled in. */
  validateSpec(spec: unknown): ExperimentSpec | void;
  /** The view of a final or partial result (every kind draws its partial rows while a sweep runs). */
  viewFromResult(result: ExperimentResult): View;
  /** Several models' results of one kind as one figure: `{ late: r1, early: r2 }`, the first the view's own. */
  compareResults(results: Record<string, ExperimentResult>, title?: string): View;
  /** A result holding the rows a running sweep has streamed so far (what `viewFromResult` draws live). */
  partialResult(kind: string, spec: ExperimentSpec, rows: Record<string, unknown>[], progress: Progress | null): ExperimentResult;
  /** The view kind a kind's results are drawn with, shown while waiting for the first rows. */
  viewKindOf(kind: string): ViewKind | null;
  /** The built-in kinds: their results have a cell type (cell-api.d.ts `ResultOf<kind>`); registered ones do not. */
  EXPERIMENT_KINDS?: readonly string[];
  BACKEND_ORDER?: readonly string[];
}

export class LibraryMissingError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'LibraryMissingError';
  }
}

export function libraryEntry(): string {
  return process.env.HOPSCOPE_LIBRARY ? path.resolve(process.env.HOPSCOPE_LIBRARY) : path.join(REPO_ROOT, 'src', 'index.ts');
}

function exists(file: string): boolean {
  return fs.existsSync(file) || fs.existsSync(file.replace(/\.ts$/, '.js'));
}

/** The library module (cached by require). `what` names the feature that needed it, for the error. */
export function loadLibrary(what: string): Library {
  const entry = libraryEntry();
  if (!exists(entry)) {
    throw new LibraryMissingError(
      `${what} needs the hopscope library, but ${entry} does not exist yet. ` +
        'Kernel helpers work without it (hs.signal(), hs.widgets, hs.display(), %backend, %lsmagic); ' +
        'set HOPSCOPE_LIBRARY=<file> to use another entry.',
    );
  }
  return require(entry) as Library;
}

export function libraryAvailable(): boolean {
  return exists(libraryEntry());
}

type Engine = Pick<Library, 'initEngine' | 'engineInfo' | 'describeEngine' | 'BACKEND_ORDER'>;

/** Engine calls work before src/index.ts exists: they live in src/engine/backend.ts. */
export function loadEngine(): Engine {
  const backend = require(path.join(REPO_ROOT, 'src', 'engine', 'backend.ts')) as Engine;
  if (!libraryAvailable()) return backend;
  const lib = loadLibrary('the engine');
  // The backend names are needed to reject a bad one before initEngine sees it.
  return {
    initEngine: lib.initEngine,
    engineInfo: lib.engineInfo ?? backend.engineInfo,
    describeEngine: lib.describeEngine,
    BACKEND_ORDER: lib.BACKEND_ORDER ?? backend.BACKEND_ORDER,
  };
}

/**
 * Starts the engine the CLI would start (initEngine's order: tfjs-node, wasm with native matMul, cpu) unless a
 * %backend has started one. Without it, the first tensor a cell makes lands on tfjs's fallback, the pure-JS cpu
 * backend, with its "install tfjs-node" banner in the cell's output: a model loaded by the README's first
 * `%load teaching` ran there, 10-50x slower than wasm (issue 16). Called before anything loads a model.
 */
export async function ensureEngine(lib: Pick<Library, 'engineInfo' | 'initEngine'>): Promise<void> {
  if (!lib.engineInfo()) await lib.initEngine();
}

/** Hook points of a model whichever way it exposes them. */
export function hookPointsOf(model: Model): HookPointInfo[] {
  return typeof model.hookPoints === 'function' ? model.hookPoints() : model.hookPoints;
}

export function isModel(x: unknown): x is Model {
  return typeof x === 'object' && x !== null && 'hookPoints' in x && typeof (x as Model).numLayers === 'number';
}

// The real library against this contract: a drifted signature or a view kind outside the protocol fails tsc.
type RealLibrary = typeof import('../src/index');
type Conforms<T extends true> = T;
export type RealLibraryConforms = [
  Conforms<ReturnType<RealLibrary['viewFromResult']> extends View ? true : false>,
  Conforms<ReturnType<RealLibrary['compareResults']> extends View ? true : false>,
  Conforms<ReturnType<RealLibrary['viewKindOf']> extends ReturnType<Library['viewKindOf']> ? true : false>,
  Conforms<RealLibrary['partialResult'] extends (kind: string, spec: ExperimentSpec, rows: Record<string, unknown>[], progress: Progress | null) => { summary: Record<string, unknown> } ? true : false>,
  Conforms<RealLibrary['validateSpec'] extends (spec: unknown) => unknown ? true : false>,
  Conforms<RealLibrary['runExperiment'] extends (spec: ExperimentSpec, ctx: never) => Promise<{ kind: string; summary: Record<string, unknown> }> ? true : false>,
];
