// tslab's converter in a worker thread, called synchronously: the build runs while the event loop stays free,
// and conversions, diagnostics and completions come back as the in-thread converter gives them.
import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { WorkerConverters } from '../../kernel/converter-worker';

const convs = new WorkerConverters();
after(() => convs.close());

test('the converter is built in a worker while the event loop keeps running', async () => {
  convs.start('const warmed: number = 1;\n');
  let ticks = 0;
  const timer = setInterval(() => ticks++, 5);
  await convs.ready();
  clearInterval(timer);
  // The build takes hundreds of milliseconds of synchronous TypeScript work; timers fired meanwhile.
  assert.ok(ticks > 0, 'timers ran during the build');
});

test("cells see node's globals, not those of every @types package beside them (the widget stack's jQuery)", () => {
  // node_modules/@types here holds jquery, backbone, lodash, underscore, react... (the widgets' dependencies).
  const node = convs.node.convert('', 'const b: Buffer = Buffer.from("x");\nprocess.pid');
  assert.deepEqual(node.diagnostics, []);
  const jq = convs.node.convert('', 'const j = $;');
  assert.equal(jq.diagnostics.length, 1);
  assert.match(jq.diagnostics[0].messageText, /Cannot find name '\$'/);
});

test('convert, diagnostics and completion through the synchronous channel', () => {
  const ok = convs.node.convert('', 'const x: number = 40;\nx + 2');
  assert.deepEqual(ok.diagnostics, []);
  assert.match(ok.output ?? '', /x = 40/);
  const bad = convs.node.convert('', 'const y: string = 1');
  assert.equal(bad.diagnostics.length, 1);
  assert.match(bad.diagnostics[0].messageText, /not assignable to type 'string'/);
  const c = convs.node.complete('', 'Math.flo', 8);
  assert.deepEqual(c.candidates, ['floor']);
  assert.equal(c.start, 5);
});
