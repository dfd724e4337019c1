// Shared by the protocol tests: the Python that has jupyter_client, and a private Jupyter folder set with the
// hopscope kernelspec installed by `hopscope install --prefix` (so the install path is tested too).
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

export const PYTHON = process.env.HOPSCOPE_TEST_PYTHON ?? '/usr/bin/python3';
export const REPO = path.resolve(__dirname, '..', '..');
export const FAKE_LIBRARY = path.join(__dirname, 'fixtures', 'fake-library.ts');

export function jupyterMissing(): string | false {
  const r = spawnSync(PYTHON, ['-c', 'import jupyter_client, nbclient, nbformat'], { encoding: 'utf8' });
  return r.status === 0 ? false : `${PYTHON} cannot import jupyter_client/nbclient (apt-get install python3-jupyter-client python3-nbclient python3-nbconvert)`;
}

export interface JupyterEnv {
  dir: string;
  env: NodeJS.ProcessEnv;
  kernelJson: Record<string, unknown>;
  installLog: string;
}

const made: string[] = [];
process.on('exit', () => made.forEach((d) => fs.rmSync(d, { recursive: true, force: true })));

/** A temporary folder removed when the test process exits. */
export function tempDir(prefix: string): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  made.push(d);
  return d;
}

export function makeJupyterEnv(): JupyterEnv {
  const dir = tempDir('hopscope-jupyter-');
  const prefix = path.join(dir, 'prefix');
  const r = spawnSync(process.execPath, [path.join(REPO, 'bin', 'hopscope.js'), 'install', '--prefix', prefix, '--python', PYTHON], {
    encoding: 'utf8',
  });
  if (r.status !== 0) throw new Error(`hopscope install failed: ${r.stderr}${r.stdout}`);
  const share = path.join(prefix, 'share', 'jupyter');
  const kernelJson = JSON.parse(fs.readFileSync(path.join(share, 'kernels', 'hopscope', 'kernel.json'), 'utf8')) as Record<string, unknown>;
  const env = {
    ...process.env,
    JUPYTER_PATH: share,
    JUPYTER_DATA_DIR: path.join(dir, 'data'),
    JUPYTER_RUNTIME_DIR: path.join(dir, 'runtime'),
    JUPYTER_CONFIG_DIR: path.join(dir, 'config'),
    JUPYTER_PLATFORM_DIRS: '0',
  };
  return { dir, env, kernelJson, installLog: r.stdout };
}

/** Runs a Python script and returns its stdout; kernel logs (stderr) are kept for failure messages. */
export function runPython(args: string[], env: NodeJS.ProcessEnv, timeoutMs: number): Promise<{ stdout: string; stderr: string; code: number | null }> {
  return new Promise((resolve) => {
    const p = spawn(PYTHON, args, { env, cwd: REPO });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (b: Buffer) => (stdout += b.toString()));
    p.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
    const timer = setTimeout(() => p.kill('SIGKILL'), timeoutMs);
    p.on('close', (code) => {
      clearTimeout(timer);
      resolve({ stdout, stderr, code });
    });
  });
}
