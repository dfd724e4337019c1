// `hopscope install`: writes the kernelspec where the Jupyter that will use it looks, and copies the built
// widget frontend next to it. Jupyter's folders come from the Python that runs Jupyter, so we find that Python
// first (--python, the interpreter of `jupyter` on PATH, python3, python) and say what we found.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { cellTypesDir, ensureCellTypes, freshCellTypes } from './cell-types';
import { REPO_ROOT } from './library';

export interface InstallOptions {
  user?: boolean;
  sysPrefix?: boolean;
  prefix?: string;
  python?: string;
  name?: string;
  log?: (line: string) => void;
  /** Generate the library's declarations for typed `hs.` in cells (default true). */
  cellTypes?: boolean;
  /** The built labextension to copy (default widgets/labextension; tests pass their own). */
  labextension?: string;
}

export interface JupyterPython {
  executable: string;
  prefix: string;
  /** jupyter_core.paths.jupyter_data_dir(): the per-user data folder. */
  userDataDir: string;
  /** jupyter_core.paths.jupyter_path(): every data folder Jupyter searches. */
  dataPath: string[];
}

export class InstallError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'InstallError';
  }
}

const PROBE =
  'import sys, json\n' +
  'import jupyter_core.paths as p\n' +
  'print(json.dumps({"executable": sys.executable, "prefix": sys.prefix, "userDataDir": p.jupyter_data_dir(), "dataPath": p.jupyter_path()}))';

/** Runs the probe with one Python; the reason it is not usable otherwise. */
export function probePython(py: string): JupyterPython | string {
  const r = spawnSync(py, ['-c', PROBE], { encoding: 'utf8', timeout: 20_000 });
  if (r.error) return (r.error as NodeJS.ErrnoException).code === 'ENOENT' ? 'not found' : r.error.message;
  if (r.status !== 0) {
    const last = (r.stderr || '').trim().split('\n').pop() ?? '';
    return /No module named/.test(last) ? 'has no jupyter_core (Jupyter is not installed for it)' : `failed: ${last}`;
  }
  try {
    return JSON.parse(r.stdout.trim().split('\n').pop() ?? '') as JupyterPython;
  } catch {
    return `printed something unexpected: ${r.stdout.slice(0, 200)}`;
  }
}

function onPath(cmd: string): string | null {
  for (const dir of (process.env.PATH ?? '').split(path.delimiter)) {
    const f = path.join(dir, cmd);
    try {
      fs.accessSync(f, fs.constants.X_OK);
      return f;
    } catch {
      // keep looking
    }
  }
  return null;
}

/** The interpreter named in the `#!` line of the `jupyter` script on PATH: the Python that runs Jupyter. */
function jupyterShebangPython(): string | null {
  const jupyter = onPath('jupyter');
  if (!jupyter) return null;
  try {
    const first = fs.readFileSync(jupyter, 'utf8').split('\n', 1)[0];
    const m = /^#!\s*(\S+)(?:\s+(\S+))?/.exec(first);
    if (!m) return null;
    return path.basename(m[1]) === 'env' && m[2] ? m[2] : m[1];
  } catch {
    return null;
  }
}

/** Candidates in order, each with what happened, and the first usable one. */
export function findJupyterPython(explicit?: string): { found: JupyterPython | null; tried: { python: string; result: string }[] } {
  const candidates = explicit
    ? [explicit]
    : [jupyterShebangPython(), process.env.CONDA_PREFIX ? path.join(process.env.CONDA_PREFIX, 'bin', 'python') : null, 'python3', 'python', '/usr/bin/python3'];
  const tried: { python: string; result: string }[] = [];
  for (const c of [...new Set(candidates.filter((x): x is string => !!x))]) {
    const r = probePython(c);
    if (typeof r !== 'string') {
      tried.push({ python: c, result: `runs Jupyter (${r.executable}, prefix ${r.prefix})` });
      return { found: r, tried };
    }
    tried.push({ python: c, result: r });
  }
  return { found: null, tried };
}

/** The `share/jupyter` folder to install into. */
function dataDir(o: InstallOptions, py: JupyterPython | null): string {
  if (o.prefix) return path.join(path.resolve(o.prefix), 'share', 'jupyter');
  if (o.sysPrefix) {
    if (!py) throw new InstallError('--sys-prefix needs the Python that runs Jupyter, and none was found (see above); pass --python PATH');
    return path.join(py.prefix, 'share', 'jupyter');
  }
  if (py) return py.userDataDir;
  // No Python: the documented per-user default of jupyter_core.
  if (process.env.JUPYTER_DATA_DIR) return process.env.JUPYTER_DATA_DIR;
  if (process.platform === 'darwin') return path.join(os.homedir(), 'Library', 'Jupyter');
  if (process.platform === 'win32') return path.join(process.env.APPDATA ?? os.homedir(), 'jupyter');
  return path.join(process.env.XDG_DATA_HOME ?? path.join(os.homedir(), '.local', 'share'), 'jupyter');
}

export const LOGO_DIR = path.join(__dirname, 'logos');
export const LOGOS = ['logo-32x32.png', 'logo-64x64.png', 'logo-svg.svg'];

/** install.json of a prebuilt labextension (the fields jupyterlab's federated extension manager reads). */
export function labextensionInstallJson(dir: string): Record<string, string> {
  return {
    packageManager: 'npm',
    packageName: 'hopscope',
    uninstallInstructions: `Installed by \`hopscope install\` from ${REPO_ROOT}; remove the folder ${dir} (and the hopscope kernelspec: jupyter kernelspec remove hopscope)`,
  };
}

export function kernelSpec(): Record<string, unknown> {
  return {
    argv: [process.execPath, path.join(REPO_ROOT, 'bin', 'hopscope.js'), 'kernel', '--config-path', '{connection_file}'],
    display_name: 'TypeScript (hopscope)',
    language: 'typescript',
    // SIGINT also stops synchronous code (tslab runs cells with breakOnSigint); interrupt_request works as well.
    interrupt_mode: 'signal',
    env: {},
    metadata: { debugger: false },
  };
}

export function install(o: InstallOptions): { kernelDir: string; labextensionDir: string | null } {
  const say = o.log ?? (() => {});
  const modes = [o.user, o.sysPrefix, o.prefix !== undefined].filter(Boolean).length;
  if (modes > 1) throw new InstallError('use one of --user, --sys-prefix, --prefix');
  const needPython = !o.prefix || o.python !== undefined;
  let py: JupyterPython | null = null;
  if (needPython) {
    const { found, tried } = findJupyterPython(o.python);
    say('Looking for the Python that runs Jupyter:');
    for (const t of tried) say(`  ${t.python}: ${t.result}`);
    py = found;
    if (!py) {
      if (o.python) throw new InstallError(`--python ${o.python}: ${tried[0]?.result ?? 'unusable'}; install Jupyter for it or pass another --python`);
      if (o.sysPrefix) throw new InstallError('--sys-prefix needs the Python that runs Jupyter; none of the above can import jupyter_core');
      say('  none found: using the default per-user Jupyter folder (pass --python PATH to be sure)');
    }
  }
  const share = dataDir(o, py);
  const name = o.name ?? 'hopscope';
  const kernelDir = path.join(share, 'kernels', name);
  fs.mkdirSync(kernelDir, { recursive: true });
  fs.writeFileSync(path.join(kernelDir, 'kernel.json'), JSON.stringify(kernelSpec(), null, 2) + '\n');
  // The launcher and notebook tabs show these (jupyter_client's kernelspec looks for logo-* files here).
  for (const logo of LOGOS) fs.copyFileSync(path.join(LOGO_DIR, logo), path.join(kernelDir, logo));
  say(`Kernelspec "${name}" written to ${kernelDir}/kernel.json`);
  if (py && !py.dataPath.map((p) => path.resolve(p)).includes(path.resolve(share))) {
    say(`  note: ${share} is not in this Jupyter's search path (${py.dataPath.join(', ')}); add it to JUPYTER_PATH`);
  }

  if (o.cellTypes !== false) {
    // Typed `hs.` completion from the first kernel start (otherwise the kernel builds them in the background).
    if (freshCellTypes()) say(`Library types for cells are up to date (${cellTypesDir()})`);
    else {
      const t0 = Date.now();
      try {
        ensureCellTypes();
        say(`Library types for cells generated in ${((Date.now() - t0) / 1000).toFixed(1)} s (${cellTypesDir()})`);
      } catch (e) {
        say(`  note: could not generate the library types for cells (${(e as Error).message}); hs.* stays untyped`);
      }
    }
  }

  let labextensionDir: string | null = null;
  const built = o.labextension ?? path.join(REPO_ROOT, 'widgets', 'labextension');
  if (fs.existsSync(path.join(built, 'package.json'))) {
    const pkg = JSON.parse(fs.readFileSync(path.join(built, 'package.json'), 'utf8')) as { name?: string };
    labextensionDir = path.join(share, 'labextensions', pkg.name ?? 'hopscope-widgets');
    fs.rmSync(labextensionDir, { recursive: true, force: true });
    fs.mkdirSync(path.dirname(labextensionDir), { recursive: true });
    fs.cpSync(built, labextensionDir, { recursive: true });
    // JupyterLab's extension manager reads this to say how the extension was installed and how to remove it.
    fs.writeFileSync(path.join(labextensionDir, 'install.json'), JSON.stringify(labextensionInstallJson(labextensionDir), null, 2) + '\n');
    say(`Widget frontend copied to ${labextensionDir}`);
  } else {
    say(`Widget frontend not built (${built} missing): build widgets/ first for live views in JupyterLab`);
  }
  say(`Check with: ${py ? py.executable : 'python3'} -m jupyter kernelspec list`);
  return { kernelDir, labextensionDir };
}
