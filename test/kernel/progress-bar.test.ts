// Progress bars for library calls made in cells (issue 16): one output updated in place (display_id), throttled,
// ending with how the call ended; hs.runExperiment shows one and still calls the caller's own onProgress.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createHs } from '../../kernel/hs';
import { PROGRESS_INTERVAL_MS, ProgressBar } from '../../kernel/progress-bar';
import type { HsKernel } from '../../kernel/cell-api';
import { FAKE_LIBRARY } from './jupyter-env';
import * as fake from './fixtures/fake-library';

type Sent = { msgType: string; content: { data: Record<string, string>; transient: { display_id: string } } };

function recorder() {
  const sent: Sent[] = [];
  return { sent, publish: (msgType: string, content: Record<string, unknown>) => sent.push({ msgType, content: content as Sent['content'] }) };
}

test('a progress bar: one display updated in place, throttled, a phase’s last step always shown, then how it ended', () => {
  let t = 1000;
  const { sent, publish } = recorder();
  const bar = new ProgressBar(publish, 'cross-patch <sweep>', () => t);
  assert.equal(sent.length, 1);
  assert.equal(sent[0].msgType, 'display_data');
  t += 10;
  bar.update({ done: 1, total: 10, message: 'sweep' });
  assert.equal(sent.length, 1, 'within the interval: not sent');
  t += PROGRESS_INTERVAL_MS;
  bar.update({ done: 2, total: 10, message: 'sweep' });
  assert.equal(sent.length, 2);
  t += 1;
  bar.update({ done: 10, total: 10, message: 'sweep' });
  assert.equal(sent.length, 3, 'the last step of a phase is sent at once');
  t = 3500;
  bar.finish();
  bar.finish();
  bar.update({ done: 11, total: 12 });
  assert.equal(sent.length, 4, 'nothing after the end');
  assert.deepEqual(sent.slice(1).map((s) => s.msgType), ['update_display_data', 'update_display_data', 'update_display_data']);
  assert.equal(new Set(sent.map((s) => s.content.transient.display_id)).size, 1, 'one display id');
  const last = sent[3].content.data;
  assert.equal(last['text/plain'], 'cross-patch <sweep>: sweep 10/10 (done in 2.5 s)');
  assert.match(last['text/html'], /<progress value="10" max="10"/);
  assert.match(last['text/html'], /cross-patch &lt;sweep&gt;/, 'the label is escaped');
});

test('a progress bar that ends in an error says where it stopped and why', () => {
  let t = 0;
  const { sent, publish } = recorder();
  const bar = new ProgressBar(publish, 'probe', () => t);
  t = 300;
  bar.update({ done: 3, total: 8, message: 'identify' });
  t = 1200;
  bar.finish(new Error('interrupted\nstack'));
  assert.equal(sent.at(-1)?.content.data['text/plain'], 'probe: identify 3/8 (stopped after 1.2 s: interrupted)');
});

test('hs.runExperiment in a cell shows a progress bar and still calls the caller’s onProgress', async () => {
  const before = process.env.HOPSCOPE_LIBRARY;
  process.env.HOPSCOPE_LIBRARY = FAKE_LIBRARY;
  try {
    const { sent, publish } = recorder();
    const bars: ProgressBar[] = [];
    const hs = createHs({} as HsKernel, { progress: (label) => (bars.push(new ProgressBar(publish, label)), bars.at(-1)!) }) as unknown as {
      runExperiment(spec: object, ctx: object): Promise<{ summary: { layers: number } }>;
    };
    const seen: number[] = [];
    const model = await fake.loadModel('m');
    const r = await hs.runExperiment({ kind: 'logit-lens', version: 1, layers: [0, 1, 2], stepMs: 1 }, { model, onProgress: (ev: { done: number }) => seen.push(ev.done) });
    assert.equal(r.summary.layers, 3);
    assert.deepEqual(seen, [1, 2, 3], 'the caller’s callback saw every step');
    assert.equal(bars.length, 1);
    assert.equal(sent[0].msgType, 'display_data');
    assert.match(sent.at(-1)!.content.data['text/plain'], /^logit-lens: 3\/3 \(done in \d+\.\d s\)$/);

    await assert.rejects(hs.runExperiment({ kind: 'no-such-kind', version: 1 }, { model }));
    assert.equal(bars.length, 2);
    assert.match(sent.at(-1)!.content.data['text/plain'], /^no-such-kind: starting \(stopped after/);
  } finally {
    if (before === undefined) delete process.env.HOPSCOPE_LIBRARY;
    else process.env.HOPSCOPE_LIBRARY = before;
  }
});
