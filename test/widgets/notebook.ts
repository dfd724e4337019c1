// A small executed-looking notebook for the export tests: markdown, code with stream/image/HTML/error
// outputs, two hopscope views whose state is saved in metadata.widgets (one with binary buffers), and one
// view whose state was not saved.

import { savedViewModel, WIDGET_STATE_MIME, WIDGET_VIEW_MIME } from '../../src/report/static-page';
import { logitLensState, picture, probeAccuracyState } from './fixtures';

export function sampleNotebook(): Record<string, unknown> {
  const view = (id: string, fallback: string) => ({
    output_type: 'display_data',
    metadata: {},
    data: { [WIDGET_VIEW_MIME]: { version_major: 2, version_minor: 0, model_id: id }, 'text/plain': [fallback] },
  });
  return {
    nbformat: 4,
    nbformat_minor: 5,
    metadata: {
      kernelspec: { name: 'hopscope', display_name: 'hopscope (TypeScript)', language: 'typescript' },
      widgets: {
        [WIDGET_STATE_MIME]: {
          version_major: 2,
          version_minor: 0,
          state: { 'model-probe': savedViewModel(probeAccuracyState()), 'model-lens': savedViewModel(logitLensState()) },
        },
      },
    },
    cells: [
      {
        cell_type: 'markdown',
        metadata: {},
        source: ['# Two-hop recall: where is the entity resolved?\n', '\n', 'Probes on **image** and *text* prompts; see `probe-accuracy`.\n', '\n', '- item one\n', '- item two <script>alert(1)</script>\n'],
      },
      {
        cell_type: 'code',
        execution_count: 1,
        metadata: {},
        source: "const m = await loadModel('llava_tiny_A');\n%time probe(m)",
        outputs: [
          { output_type: 'stream', name: 'stdout', text: ['loaded llava (2 layers)\n', 'probing 32 layers…\n'] },
          view('model-probe', 'HopscopeView(probe-accuracy)'),
        ],
      },
      {
        cell_type: 'code',
        execution_count: 2,
        metadata: {},
        source: 'logitLens(m, image)',
        outputs: [view('model-lens', 'HopscopeView(logit-lens)')],
      },
      {
        cell_type: 'code',
        execution_count: 3,
        metadata: {},
        source: 'tslab.display.png(picture)',
        outputs: [
          { output_type: 'display_data', metadata: {}, data: { 'image/png': picture(64).png, 'text/plain': ['<image>'] } },
          { output_type: 'execute_result', execution_count: 3, metadata: {}, data: { 'text/html': ['<table class="tiny"><tr><td>acc</td><td>0.45</td></tr></table>'], 'text/plain': ['table'] } },
        ],
      },
      {
        cell_type: 'code',
        execution_count: 4,
        metadata: {},
        source: 'knockout(m)',
        outputs: [
          view('model-never-saved', 'HopscopeView(knockout-map)'),
          { output_type: 'error', ename: 'InputError', evalue: 'image span lengths differ', traceback: ['\u001b[31mInputError\u001b[0m: image span lengths differ', '    at crossPatch (src/experiments/cross-patch.ts:88)'] },
        ],
      },
    ],
  };
}
