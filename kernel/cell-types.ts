// The library's real types for cells. tslab type-checks cells with its own TypeScript (5.0) against declaration
// files; loading src/ as sources would check all of it at every kernel start (40 s) and fail (outside tslab's
// rootDir). So src/index.ts is emitted once as a .d.ts tree into .hopscope-cache/cell-types/ with tslab's own
// compiler (so tslab can read what it wrote), beside copies of kernel/cell-api.d.ts and kernel-api.d.ts: cells
// then see `hs` exactly as tsc sees cell-api.d.ts's Hs. The tree is keyed by a hash of the sources; `hopscope
// install` builds it, and a kernel that finds it stale builds it in the background for the next start.
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { REPO_ROOT } from './library';
import { log } from './log';

const KERNEL_DIR = __dirname;
const DECLS = ['cell-api.d.ts', 'kernel-api.d.ts'];
const STAMP = 'stamp.txt';
/** A build older than this is taken for dead (its lock is ignored). */
const LOCK_STALE_MS = 10 * 60_000;

/** The TypeScript that tslab's converter requires (its own copy; patched before a converter is built). */
export function tslabTypeScript(): string {
  return require.resolve('@tslab/typescript-for-tslab', { paths: [path.dirname(require.resolve('tslab/package.json'))] });
}

export function cellTypesDir(root = REPO_ROOT): string {
  return path.join(root, '.hopscope-cache', 'cell-types');
}

function sourceFiles(): string[] {
  const src = path.join(REPO_ROOT, 'src');
  const out: string[] = [];
  const walk = (dir: string) => {
    for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
      const f = path.join(dir, e.name);
      if (e.isDirectory()) walk(f);
      else if (/\.(ts|json)$/.test(e.name) && !e.name.endsWith('.test.ts')) out.push(f);
    }
  };
  walk(src);
  return [...out.sort(), ...DECLS.map((d) => path.join(KERNEL_DIR, d))];
}

/** Hash of everything the declarations are made from (contents, not mtimes: a checkout rewrites those). */
export function sourceStamp(): string {
  const h = createHash('sha256');
  h.update(`ts ${(require('@tslab/typescript-for-tslab/package.json') as { version: string }).version}\n`);
  for (const f of sourceFiles()) h.update(`${path.relative(REPO_ROOT, f)}\n`).update(fs.readFileSync(f));
  return h.digest('hex');
}

/** The generated cell-api.d.ts when the tree matches the sources, else null. */
export function freshCellTypes(dir = cellTypesDir()): string | null {
  const api = path.join(dir, 'kernel', 'cell-api.d.ts');
  try {
    return fs.readFileSync(path.join(dir, STAMP), 'utf8') === sourceStamp() && fs.existsSync(api) ? api : null;
  } catch {
    return null;
  }
}

/** Emits the declaration tree (synchronous, 5–40 s). Returns the generated cell-api.d.ts. */
export function buildCellTypes(dir = cellTypesDir()): string {
  const ts = require('@tslab/typescript-for-tslab') as typeof import('typescript');
  const stamp = sourceStamp();
  const tmp = `${dir}.tmp-${process.pid}`;
  fs.rmSync(tmp, { recursive: true, force: true });
  const program = ts.createProgram([path.join(REPO_ROOT, 'src', 'index.ts')], {
    declaration: true,
    emitDeclarationOnly: true,
    outDir: tmp,
    rootDir: REPO_ROOT,
    skipLibCheck: true,
    strict: true,
    target: ts.ScriptTarget.ES2022,
    module: ts.ModuleKind.CommonJS,
    moduleResolution: ts.ModuleResolutionKind.Node10,
    esModuleInterop: true,
    resolveJsonModule: true,
    types: ['node'],
    typeRoots: [path.join(REPO_ROOT, 'node_modules', '@types')],
  });
  const emitted = program.emit();
  if (emitted.emitSkipped) throw new Error(`declaration emit of src/index.ts skipped: ${ts.formatDiagnostics(emitted.diagnostics.slice(0, 5), ts.createCompilerHost({}))}`);
  fs.mkdirSync(path.join(tmp, 'kernel'), { recursive: true });
  for (const d of DECLS) fs.copyFileSync(path.join(KERNEL_DIR, d), path.join(tmp, 'kernel', d));
  fs.writeFileSync(path.join(tmp, STAMP), stamp);
  fs.rmSync(dir, { recursive: true, force: true });
  fs.renameSync(tmp, dir);
  return path.join(dir, 'kernel', 'cell-api.d.ts');
}

/**
 * The @types packages whose globals cells see: node's alone. tslab's default is every package under the
 * notebook's node_modules/@types, which here are the widget stack's (jquery, backbone, lodash, underscore, react,
 * 8 MB): parsing them is most of the converter's 2 s build (the first execute after kernel_info waits for it),
 * and cells got globals they never imported (`$`, underscore's `_`). A package a cell imports still finds its own
 * @types through module resolution: only the automatic inclusion is narrowed (converter-worker.ts).
 */
export const CELL_GLOBAL_TYPES: readonly string[] = ['node'];

/** Whether `lock` was left by a build that is gone (its process exited, or it is older than a build can take). */
function staleLock(lock: string): boolean {
  try {
    if (Date.now() - fs.statSync(lock).mtimeMs > LOCK_STALE_MS) return true;
    const pid = Number(fs.readFileSync(lock, 'utf8'));
    if (!Number.isInteger(pid) || pid <= 0) return false;
    process.kill(pid, 0);
    return false;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'ESRCH';
  }
}

/**
 * The generated cell-api.d.ts, built now when stale. Builders take `${dir}.lock` (the background build takes it
 * too), so concurrent callers (`hopscope install` beside a starting kernel, two test files) build the tree once and
 * the others wait for it, instead of each building and replacing the folder under the other's readers.
 */
export function ensureCellTypes(dir = cellTypesDir(), waitMs = LOCK_STALE_MS): string {
  const lock = `${dir}.lock`;
  const deadline = Date.now() + waitMs;
  const nap = new Int32Array(new SharedArrayBuffer(4));
  fs.mkdirSync(path.dirname(dir), { recursive: true });
  for (;;) {
    const fresh = freshCellTypes(dir);
    if (fresh) return fresh;
    try {
      fs.writeFileSync(lock, String(process.pid), { flag: 'wx' });
      break;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      if (staleLock(lock)) fs.rmSync(lock, { force: true });
      else if (Date.now() > deadline) throw new Error(`timed out after ${waitMs / 1000} s waiting for the cell types build holding ${lock}`);
      else Atomics.wait(nap, 0, 0, 200);
    }
  }
  try {
    return freshCellTypes(dir) ?? buildCellTypes(dir);
  } finally {
    fs.rmSync(lock, { force: true });
  }
}

/** Starts a low-priority background build unless one is running; never throws. */
export function buildCellTypesInBackground(dir = cellTypesDir()): void {
  const lock = `${dir}.lock`;
  try {
    fs.mkdirSync(path.dirname(dir), { recursive: true });
    if (fs.existsSync(lock)) {
      if (!staleLock(lock)) return;
      fs.rmSync(lock, { force: true });
    }
    fs.writeFileSync(lock, String(process.pid), { flag: 'wx' });
    const code = `try { require(${JSON.stringify(__filename)}).buildCellTypes(${JSON.stringify(dir)}) } finally { require('node:fs').rmSync(${JSON.stringify(lock)}, { force: true }) }`;
    const child = spawn(process.execPath, ['--require', require.resolve('tsx/cjs'), '-e', code], { detached: true, stdio: 'ignore', cwd: REPO_ROOT });
    if (child.pid) {
      os.setPriority(child.pid, 19);
      // The lock names the process that builds (it outlives a kernel that exits first).
      fs.writeFileSync(lock, String(child.pid));
    }
    child.unref();
    log(`library types for cells are being generated in the background (pid ${child.pid}) into ${dir}; hs.* is typed from the next kernel start`);
  } catch (e) {
    log(`could not start the cell types build: ${(e as Error).message}`);
  }
}
