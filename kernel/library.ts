// The hopscope library as the kernel sees it: the contract the magics code against, loaded lazily on first use
// so kernel start stays fast. HOPSCOPE_LIBRARY points the kernel at another entry (tests use a stand-in).
import * as fs from 'node:fs';
import * as path from 'node:path';

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

export interface View {
  view: string;
  title: string;
  data: unknown;
}

export interface EngineInfo {
  provider?: string;
  backend?: string;
  threads?: number;
}

export interface Library {
  initEngine(opts?: { backend?: string; threads?: number }): Promise<EngineInfo>;
  describeEngine(info: EngineInfo): string;
  loadModel(dirOrName: string): Promise<Model>;
  loadDataset(dir: string): Promise<unknown>;
  runExperiment(spec: ExperimentSpec, ctx: ExperimentContext): Promise<ExperimentResult>;
  /** Throws SpecError naming the field; returns the spec with defaults filled in. */
  validateSpec(spec: unknown): ExperimentSpec | void;
  viewFromResult?(result: ExperimentResult): View;
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

/** Engine calls work before src/index.ts exists: they live in src/engine/backend.ts. */
export function loadEngine(): Pick<Library, 'initEngine' | 'describeEngine' | 'BACKEND_ORDER'> {
  type Engine = Pick<Library, 'initEngine' | 'describeEngine' | 'BACKEND_ORDER'>;
  const backend = require(path.join(REPO_ROOT, 'src', 'engine', 'backend.ts')) as Engine;
  if (!libraryAvailable()) return backend;
  const lib = loadLibrary('the engine');
  // The backend names are needed to reject a bad one before initEngine sees it.
  return { initEngine: lib.initEngine, describeEngine: lib.describeEngine, BACKEND_ORDER: lib.BACKEND_ORDER ?? backend.BACKEND_ORDER };
}

/** `viewFromResult` from the library, else src/report/views.ts, else null (callers fall back to a table view). */
export function loadViewFromResult(lib: Library): ((r: ExperimentResult) => View) | null {
  if (typeof lib.viewFromResult === 'function') return lib.viewFromResult;
  const file = path.join(REPO_ROOT, 'src', 'report', 'views.ts');
  if (!exists(file)) return null;
  const m = require(file) as { viewFromResult?: (r: ExperimentResult) => View };
  return typeof m.viewFromResult === 'function' ? m.viewFromResult : null;
}

/** Hook points of a model whichever way it exposes them. */
export function hookPointsOf(model: Model): HookPointInfo[] {
  return typeof model.hookPoints === 'function' ? model.hookPoints() : model.hookPoints;
}

export function isModel(x: unknown): x is Model {
  return typeof x === 'object' && x !== null && 'hookPoints' in x && typeof (x as Model).numLayers === 'number';
}
