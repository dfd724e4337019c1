// `hopscope install`: the kernelspec Jupyter will start (absolute node and launcher, signal interrupts), where
// it goes for --prefix / --user / --sys-prefix, the widget frontend copy, and the errors that say what to do.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import { spawnSync } from 'node:child_process';
import { PNG } from 'pngjs';
import { InstallError, install, probePython } from '../../kernel/install';
import { PYTHON, REPO, jupyterMissing, tempDir } from './jupyter-env';

const tmp = () => tempDir('hopscope-install-');

test('--prefix writes kernel.json with absolute node and launcher, and copies the built widget frontend', () => {
  const dir = tmp();
  const lines: string[] = [];
  const r = install({ prefix: dir, log: (l) => lines.push(l) });
  assert.equal(r.kernelDir, path.join(dir, 'share', 'jupyter', 'kernels', 'hopscope'));
  const spec = JSON.parse(fs.readFileSync(path.join(r.kernelDir, 'kernel.json'), 'utf8'));
  assert.deepEqual(spec.argv, [process.execPath, path.join(REPO, 'bin', 'hopscope.js'), 'kernel', '--config-path', '{connection_file}']);
  assert.ok(path.isAbsolute(spec.argv[0]) && fs.existsSync(spec.argv[1]));
  assert.equal(spec.display_name, 'TypeScript (hopscope)');
  assert.equal(spec.language, 'typescript');
  assert.equal(spec.interrupt_mode, 'signal');
  const built = fs.existsSync(path.join(REPO, 'widgets', 'labextension', 'package.json'));
  assert.equal(r.labextensionDir !== null, built);
  if (r.labextensionDir) assert.ok(fs.existsSync(path.join(r.labextensionDir, 'package.json')));
  assert.ok(lines.some((l) => l.includes('kernel.json')));
});

test('the kernelspec gets its logos (32 and 64 px PNGs, an SVG); the labextension gets install.json', () => {
  const dir = tmp();
  const built = path.join(tmp(), 'labextension');
  fs.mkdirSync(path.join(built, 'static'), { recursive: true });
  fs.writeFileSync(path.join(built, 'package.json'), JSON.stringify({ name: 'hopscope-widgets', version: '0.1.0' }));
  const r = install({ prefix: dir, labextension: built });
  for (const size of [32, 64]) {
    const png = PNG.sync.read(fs.readFileSync(path.join(r.kernelDir, `logo-${size}x${size}.png`)));
    assert.deepEqual([png.width, png.height], [size, size]);
    assert.ok(png.data.some((v, i) => i % 4 === 3 && v === 255), 'opaque pixels');
  }
  assert.match(fs.readFileSync(path.join(r.kernelDir, 'logo-svg.svg'), 'utf8'), /^<svg [^>]*viewBox="0 0 64 64"/);
  assert.equal(r.labextensionDir, path.join(dir, 'share', 'jupyter', 'labextensions', 'hopscope-widgets'));
  const info = JSON.parse(fs.readFileSync(path.join(r.labextensionDir!, 'install.json'), 'utf8'));
  assert.equal(info.packageManager, 'npm');
  assert.equal(info.packageName, 'hopscope');
  assert.match(info.uninstallInstructions, /hopscope install.*labextensions[\\/]hopscope-widgets/);
});

// jupyter_server serves every logo-* file of the spec's resource_dir (kernelspecs handler).
test('jupyter_client finds the logos in the installed kernelspec', { skip: jupyterMissing() || undefined }, () => {
  const dir = tmp();
  install({ prefix: dir });
  const share = path.join(dir, 'share', 'jupyter');
  const r = spawnSync(PYTHON, ['-c', 'import json, os; from jupyter_client.kernelspec import KernelSpecManager as K; d = K().get_kernel_spec("hopscope").resource_dir; print(json.dumps(sorted(f for f in os.listdir(d) if f.startswith("logo-"))))'], {
    encoding: 'utf8',
    env: { ...process.env, JUPYTER_PATH: share, JUPYTER_DATA_DIR: path.join(dir, 'data') },
  });
  assert.equal(r.status, 0, r.stderr);
  assert.deepEqual(JSON.parse(r.stdout), ['logo-32x32.png', 'logo-64x64.png', 'logo-svg.svg']);
});

test('conflicting or impossible options fail with what to do', () => {
  assert.throws(() => install({ user: true, prefix: tmp() }), (e: unknown) => e instanceof InstallError && /one of --user, --sys-prefix, --prefix/.test((e as Error).message));
  assert.throws(() => install({ sysPrefix: true, python: '/nonexistent/python3' }), /--python \/nonexistent\/python3: not found/);
  assert.equal(probePython('/nonexistent/python3'), 'not found');
});

test('--user goes where the Python that runs Jupyter says (JUPYTER_DATA_DIR respected)', { skip: jupyterMissing() || undefined }, () => {
  const dir = tmp();
  const saved = process.env.JUPYTER_DATA_DIR;
  process.env.JUPYTER_DATA_DIR = path.join(dir, 'data');
  try {
    const lines: string[] = [];
    const r = install({ user: true, python: PYTHON, log: (l) => lines.push(l) });
    assert.equal(r.kernelDir, path.join(dir, 'data', 'kernels', 'hopscope'));
    assert.ok(lines.some((l) => l.includes('runs Jupyter')), lines.join('\n'));
  } finally {
    if (saved === undefined) delete process.env.JUPYTER_DATA_DIR;
    else process.env.JUPYTER_DATA_DIR = saved;
  }
});
