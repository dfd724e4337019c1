// The layer rules and the no-cycle rule of .dependency-cruiser.cjs hold on the whole tree (what `npm run
// lint:deps` checks), and the rules do catch a violation (a probe file importing rightwards is reported).
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import { stripVTControlCharacters } from 'node:util';

const ROOT = path.resolve(__dirname, '..', '..');
const BIN = path.join(ROOT, 'node_modules', '.bin', 'depcruise');

function cruise(paths: string[], extra: string[] = []): { status: number | null; out: string } {
  // CI may force colour (FORCE_COLOR), which wraps the file names in escape codes: match the plain text.
  const env = { ...process.env, NO_COLOR: '1', FORCE_COLOR: '0' };
  const r = spawnSync(BIN, [...paths, '--config', '.dependency-cruiser.cjs', '--output-type', 'err', ...extra], { cwd: ROOT, encoding: 'utf8', env });
  return { status: r.status, out: stripVTControlCharacters(`${r.stdout}${r.stderr}`) };
}

test('no layer violation and no import cycle in src/, kernel/ and widgets/src/', () => {
  // depcruise's own cache (content hashes, so an edited file is cruised again): 1 s instead of 6-15 s on reruns.
  const cache = path.join(ROOT, 'node_modules', '.cache', 'hopscope-depcruise');
  const r = cruise(['src', 'kernel', 'widgets/src'], ['--cache', cache, '--cache-strategy', 'content']);
  assert.equal(r.status, 0, r.out);
  assert.match(r.out, /no dependency violations found/);
});

test('the checker reports an engine module importing models, and widgets importing the library', () => {
  const probes = [path.join(ROOT, 'src', 'engine', 'zz-layer-probe.ts'), path.join(ROOT, 'widgets', 'src', 'zz-layer-probe.ts')];
  fs.writeFileSync(probes[0], "import { loadModelFromDir } from '../models/load';\nexport const probe = loadModelFromDir;\n");
  fs.writeFileSync(probes[1], "import { runExperiment } from '../../src/experiments';\nexport const probe = runExperiment;\n");
  try {
    // The probes' own imports are the violations: following them further would cruise the whole tree again
    // (11 s instead of 2).
    const r = cruise(probes.map((p) => path.relative(ROOT, p)), ['--max-depth', '1']);
    assert.notEqual(r.status, 0);
    assert.match(r.out, /layer-engine: src\/engine\/zz-layer-probe\.ts → src\/models\/load\.ts/);
    assert.match(r.out, /widgets-apart: widgets\/src\/zz-layer-probe\.ts → src\/experiments\/index\.ts/);
  } finally {
    probes.forEach((p) => fs.rmSync(p, { force: true }));
  }
});
