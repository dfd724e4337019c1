// Kernel conformance a frontend relies on, through the real jupyter_client (driver.py): language_info that
// JupyterLab 4 and Pygments understand, user_expressions, this session's history, a prompt first execute after
// kernel_info, and exit when the parent process dies. Skipped when /usr/bin/python3 has no jupyter_client.
import assert from 'node:assert/strict';
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { before, describe, test } from 'node:test';
import { FAKE_LIBRARY, PYTHON, REPO, jupyterMissing, makeJupyterEnv, runPython } from './jupyter-env';

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Json = any;

const DRIVER = path.join(__dirname, 'driver.py');
const missing = jupyterMissing();
const plain = (r: Json) => r.outputs.find((o: Json) => o.type === 'execute_result')?.content.data['text/plain'];

describe('kernel conformance over jupyter_client', { skip: missing || undefined }, () => {
  let R: Json;
  before(async () => {
    const { env } = makeJupyterEnv();
    const r = await runPython([DRIVER, 'conformance', JSON.stringify({ HOPSCOPE_LIBRARY: FAKE_LIBRARY })], env, 300_000);
    try {
      R = JSON.parse(r.stdout.trim().split('\n').pop() ?? '');
    } catch {
      throw new Error(`driver failed (exit ${r.code}):\n${r.stdout.slice(-2000)}\n${r.stderr.slice(-4000)}`);
    }
    const c = R.conformance;
    process.stdout.write(
      `kernel start → kernel_info_reply ${R.startup_seconds.toFixed(2)} s; first execute after kernel_info ${c.first_seconds.toFixed(3)} s ` +
        `(a control kernel_info sent with it: answered after ${c.control_seconds?.toFixed(3)} s), second execute ${c.second_seconds.toFixed(3)} s\n`,
    );
  });

  test('language_info: TypeScript for JupyterLab 4 (codemirror_mode by name), Pygments and nbconvert', () => {
    const li = R.kernel_info.language_info;
    assert.equal(li.name, 'typescript');
    assert.equal(li.file_extension, '.ts');
    assert.equal(li.mimetype, 'text/typescript');
    // @jupyterlab/codemirror findBest(codemirror_mode) matches names case-insensitively; its language is 'TypeScript'.
    assert.equal(String(li.codemirror_mode).toLowerCase(), 'typescript');
    const lexer = spawnSync(PYTHON, ['-c', `from pygments.lexers import get_lexer_by_name; print(get_lexer_by_name(${JSON.stringify(li.pygments_lexer)}).name)`], { encoding: 'utf8' });
    assert.equal(lexer.status, 0, lexer.stderr);
    assert.equal(lexer.stdout.trim(), 'TypeScript');
  });

  test('the first execute after kernel_info: answered within 2 s, or the kernel stays responsive while it waits', () => {
    const c = R.conformance;
    assert.equal(plain(c.first), '2');
    assert.notEqual(c.control_seconds, null, 'the control kernel_info was answered');
    // On an idle machine the TypeScript build (started in a worker at process start) is done by now. On a
    // loaded one it may not be, and then the event loop must stay free: the control request, sent together
    // with the execute, is answered before the execute is (the numbers are printed above).
    if (c.first_seconds > 2) assert.ok(c.control_seconds < c.first_seconds, `control answered after ${c.control_seconds} s, execute after ${c.first_seconds} s`);
  });

  test('user_expressions are evaluated after the cell: a bundle each, errors per expression', () => {
    const ue = R.conformance.user_expressions.reply.user_expressions;
    assert.deepEqual(ue.ok, { status: 'ok', data: { 'text/plain': '21' }, metadata: {} });
    assert.equal(ue.obj.status, 'ok');
    assert.equal(ue.obj.data['text/plain'], '{ k: 20 }');
    assert.equal(ue.bad.status, 'error');
    assert.match(ue.bad.evalue, /nosuch/);
    assert.equal(R.conformance.user_expressions.reply.status, 'ok');
    // ipykernel leaves them out when the cell fails.
    assert.equal(R.conformance.ue_after_error.reply.status, 'error');
  });

  test("history_request: this session's inputs (tail, range, search, with output), not silent or unstored ones", () => {
    const c = R.conformance;
    assert.equal(c.tail.status, 'ok');
    assert.deepEqual(c.tail.history, [
      [1, 5, 'const h1 = "first"'],
      [1, 6, 'h1 + " second"'],
    ]);
    assert.deepEqual(c.tail_output.history, [[1, 6, ['h1 + " second"', "'first second'"]]]);
    assert.deepEqual(c.range.history, [
      [1, 1, '1 + 1'],
      [1, 2, '2 + 2'],
    ]);
    assert.deepEqual(c.search.history, [[1, 6, 'h1 + " second"']]); // a glob over the whole input
    assert.deepEqual(c.other_session.history, []);
  });
});

/** Whether a pid is a live process (a zombie counts as gone). */
function running(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z';
  } catch {
    return true;
  }
}

test('the kernel exits when its parent (the Jupyter process) is killed', { skip: missing || undefined }, async () => {
  const { env } = makeJupyterEnv();
  const parent: ChildProcess = spawn(PYTHON, [DRIVER, 'orphan', JSON.stringify({ HOPSCOPE_LIBRARY: FAKE_LIBRARY })], { env, cwd: REPO });
  let out = '';
  let err = '';
  parent.stderr!.on('data', (b: Buffer) => (err += b.toString()));
  const line = await new Promise<string>((resolve, reject) => {
    parent.stdout!.on('data', (b: Buffer) => {
      out += b.toString();
      if (out.includes('\n')) resolve(out.split('\n')[0]);
    });
    parent.on('exit', () => reject(new Error(`driver exited before printing the kernel pid: ${err.slice(-2000)}`)));
  });
  const { kernel_pid: pid } = JSON.parse(line) as { kernel_pid: number };
  assert.ok(running(pid), 'kernel running while its parent lives');
  const t0 = Date.now();
  parent.kill('SIGKILL');
  while (running(pid) && Date.now() - t0 < 20_000) await new Promise((r) => setTimeout(r, 100));
  const seconds = (Date.now() - t0) / 1000;
  process.stdout.write(`kernel gone ${seconds.toFixed(2)} s after its parent was killed\n`);
  if (running(pid)) process.kill(pid, 'SIGKILL');
  assert.ok(seconds < 5, `kernel still running ${seconds.toFixed(1)} s after its parent died`);
});

describe('completion and inspection over jupyter_client, with the real library', { skip: missing || undefined }, () => {
  let C: Json;
  before(async () => {
    // hopscope install (in makeJupyterEnv) generates the library's declarations: `hs` is typed from the start.
    const { env } = makeJupyterEnv();
    const r = await runPython([DRIVER, 'completion', '{}'], env, 400_000);
    try {
      C = JSON.parse(r.stdout.trim().split('\n').pop() ?? '').completion;
    } catch {
      throw new Error(`driver failed (exit ${r.code}):\n${r.stdout.slice(-2000)}\n${r.stderr.slice(-4000)}`);
    }
  });

  test('hs. members and their signatures come from the library types', () => {
    assert.equal(C.hs.status, 'ok');
    assert.ok(C.hs.matches.includes('loadModel'), JSON.stringify(C.hs.matches));
    assert.ok(C.hs.matches.includes('loadDataset'));
    assert.equal(C.hs.cursor_start, 3);
    assert.equal(C.hs_inspect.found, true);
    assert.match(C.hs_inspect.data['text/plain'], /loadModel: \(dirOrName: string, opts\?: LoadOptions\) => Promise<Model>/);
  });

  test('magic names, options and help; TypeScript still completes around a magic line', () => {
    assert.deepEqual(C.magic_names.matches, ['%recallgap', '%recover']);
    assert.ok(C.magic_options.matches.includes('--limit'));
    assert.ok(C.magic_options.matches.every((m: string) => m.startsWith('--')), 'options only, not globals');
    assert.equal(C.magic_inspect.found, true);
    assert.match(C.magic_inspect.data['text/plain'], /Usage: %recallgap/);
    assert.ok(C.around_magic.matches.includes('toUpperCase'), JSON.stringify(C.around_magic.matches));
  });

  test("hook points of the loaded model inside a string ('lm.blocks.1.<Tab>)", () => {
    assert.equal(C.load.reply.status, 'ok', JSON.stringify(C.load.reply));
    const m: string[] = C.hook_points.matches;
    assert.ok(m.length > 1, JSON.stringify(C.hook_points));
    assert.ok(m.every((n) => n.startsWith('lm.blocks.1.')));
    assert.ok(m.includes('lm.blocks.1.resid_post'), JSON.stringify(m));
  });
});
