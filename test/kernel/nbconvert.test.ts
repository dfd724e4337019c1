// `nbconvert --execute` of a small notebook in the hopscope kernel: outputs with execution counts, a magic,
// a widget, and the widget state nbclient saves into metadata.widgets (what static renderers read).
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import { jupyterMissing, makeJupyterEnv, runPython } from './jupyter-env';

/** nbformat may store text as a list of lines. */
const text = (v: string | string[]) => (Array.isArray(v) ? v.join('') : v);
const cell = (source: string) => ({ cell_type: 'code', metadata: {}, execution_count: null, outputs: [], source });

test('nbconvert --execute saves outputs and widget state', { skip: jupyterMissing() || undefined }, async () => {
  const { dir, env } = makeJupyterEnv();
  const nb = {
    nbformat: 4,
    nbformat_minor: 5,
    metadata: { kernelspec: { name: 'hopscope', display_name: 'TypeScript (hopscope)', language: 'typescript' } },
    cells: [
      cell('%lsmagic'),
      cell(
        "const w = widgets.create({state: {view: 'layer-curve', title: 'saved', data: {values: new Float32Array([0.5, 0.25])}, progress: null, error: null}})\n" +
          'w.display()',
      ),
      cell("w.set({title: 'saved-2'})\nw.get('title')"),
    ],
  };
  const input = path.join(dir, 'widget.ipynb');
  fs.writeFileSync(input, JSON.stringify(nb));
  const t0 = Date.now();
  const r = await runPython(['-m', 'nbconvert', '--to', 'notebook', '--execute', '--output', 'executed.ipynb', input], env, 300_000);
  process.stdout.write(`nbconvert --execute of 3 cells: ${((Date.now() - t0) / 1000).toFixed(1)} s\n`);
  assert.equal(r.code, 0, r.stderr.slice(-3000));
  const out = JSON.parse(fs.readFileSync(path.join(dir, 'executed.ipynb'), 'utf8'));
  assert.deepEqual(out.cells.map((c: { execution_count: number }) => c.execution_count), [1, 2, 3]);
  assert.match(text(out.cells[0].outputs[0].data['text/plain']), /%recallgap/);
  const view = out.cells[1].outputs.find((o: { output_type: string }) => o.output_type === 'display_data');
  const modelId = view.data['application/vnd.jupyter.widget-view+json'].model_id;
  assert.equal(out.cells[2].outputs[0].output_type, 'execute_result');
  assert.equal(text(out.cells[2].outputs[0].data['text/plain']), "'saved-2'");
  const saved = out.metadata.widgets['application/vnd.jupyter.widget-state+json'];
  assert.equal(saved.version_major, 2);
  const w = saved.state[modelId];
  assert.equal(w.model_name, 'HopscopeViewModel');
  assert.equal(w.model_module, 'hopscope-widgets');
  assert.equal(w.state.title, 'saved-2');
  assert.deepEqual(w.buffers.map((b: { path: string[] }) => b.path), [['data', 'values']]);
  assert.deepEqual([...new Float32Array(new Uint8Array(Buffer.from(w.buffers[0].data, 'base64')).buffer)], [0.5, 0.25]);
});
