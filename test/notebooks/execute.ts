// Executes the notebooks in the hopscope kernel with nbconvert, in a private Jupyter folder set where the kernelspec
// is installed by `hopscope install --prefix` (test/kernel/jupyter-env.ts). Used by notebooks.test.ts (into a
// temporary folder) and by scripts/execute-notebooks.sh (in place, to commit the executed notebooks):
//   node --import tsx test/notebooks/execute.ts [--out DIR] [notebook.ipynb ...]   (default: every notebook, in place)
import * as fs from 'node:fs';
import * as path from 'node:path';
import { PYTHON, REPO, jupyterMissing, makeJupyterEnv, runPython } from '../kernel/jupyter-env';

/** The notebooks' root (HOPSCOPE_NOTEBOOKS: another copy, e.g. one pointed at another model). */
export const NOTEBOOKS = process.env.HOPSCOPE_NOTEBOOKS ? path.resolve(process.env.HOPSCOPE_NOTEBOOKS) : path.join(REPO, 'notebooks');
/** The model the paper notebooks and labs load (`%load ../../data/teaching/v5`): the first build's, which their texts describe. */
export const TEACHING_MODEL = path.join(REPO, 'data', 'teaching', 'v5');

/** Every notebook under notebooks/, paper first, in name order. */
export function listNotebooks(): string[] {
  const out: string[] = [];
  for (const sub of ['paper', 'labs']) {
    const dir = path.join(NOTEBOOKS, sub);
    if (!fs.existsSync(dir)) continue;
    for (const f of fs.readdirSync(dir).sort()) if (f.endsWith('.ipynb') && !f.includes('.nbconvert')) out.push(path.join(dir, f));
  }
  return out;
}

export interface Execution {
  notebook: string;
  output: string;
  ok: boolean;
  seconds: number;
  /** nbconvert's and the kernel's log (stderr), for failure messages. */
  log: string;
}

/**
 * Runs one notebook top to bottom (the kernel's working folder is the notebook's folder, as in JupyterLab) and
 * writes the executed copy, with outputs and the widget state in its metadata, to `outDir` (or in place).
 */
export async function executeNotebook(notebook: string, env: NodeJS.ProcessEnv, opts: { outDir?: string; timeoutS?: number } = {}): Promise<Execution> {
  const timeoutS = opts.timeoutS ?? 600;
  const args = ['-m', 'nbconvert', '--to', 'notebook', '--execute', `--ExecutePreprocessor.timeout=${timeoutS}`, '--ExecutePreprocessor.kernel_name=hopscope'];
  let output: string;
  if (opts.outDir) {
    fs.mkdirSync(opts.outDir, { recursive: true });
    output = path.join(opts.outDir, path.basename(notebook));
    args.push('--output-dir', opts.outDir, '--output', path.basename(notebook, '.ipynb'));
  } else {
    output = notebook;
    args.push('--inplace');
  }
  args.push(notebook);
  const t0 = Date.now();
  const r = await runPython(args, env, (timeoutS + 60) * 1000);
  return { notebook, output, ok: r.code === 0, seconds: (Date.now() - t0) / 1000, log: r.stderr };
}

/** A private Jupyter folder set with the hopscope kernelspec; HOPSCOPE_* variables pass through to the kernel. */
export function notebookEnv(): NodeJS.ProcessEnv {
  return makeJupyterEnv().env;
}

async function main(argv: string[]): Promise<number> {
  const why = jupyterMissing();
  if (why) {
    process.stderr.write(`execute-notebooks: ${why}\n`);
    return 2;
  }
  let outDir: string | undefined;
  const files: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--out') outDir = path.resolve(argv[++i]);
    else files.push(path.resolve(argv[i]));
  }
  if (!fs.existsSync(path.join(TEACHING_MODEL, 'config.json')) && !process.env.HOPSCOPE_LIBRARY)
    process.stderr.write(`execute-notebooks: warning: ${TEACHING_MODEL} has no config.json; the notebooks load the teaching model from there\n`);
  const env = notebookEnv();
  let failed = 0;
  for (const nb of files.length ? files : listNotebooks()) {
    const r = await executeNotebook(nb, env, { outDir });
    process.stdout.write(`${r.ok ? 'ok  ' : 'FAIL'} ${r.seconds.toFixed(1).padStart(6)} s  ${path.relative(REPO, nb)}${outDir ? ` -> ${r.output}` : ''}\n`);
    if (!r.ok) {
      failed++;
      process.stderr.write(r.log.slice(-4000) + '\n');
    }
  }
  process.stdout.write(`python: ${PYTHON}\n`);
  return failed ? 1 : 0;
}

if (require.main === module) main(process.argv.slice(2)).then((code) => process.exit(code));
