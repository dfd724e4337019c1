// Fuzzed widget messages from a frontend through the kernel's comm routing (CommManager.handle) into live
// widgets and the control comm (WidgetHub): comm_open / comm_msg / comm_close with odd ids, targets, methods,
// states, buffer_paths and buffers. Every message is handled, or throws the kernel's own "unknown comm
// method" error (which the request handler logs); nothing pollutes Object.prototype, and everything the kernel
// sends back is serialisable JSON. Pure handlers with a recording transport: no kernel, no sockets.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { RecordingTransport, request } from '../kernel/recording';
import { FUZZ_RUNS, FUZZ_SEED, FUZZ_TEST_TIMEOUT_MS, fuzzParams } from './fuzz';

// The kernel logs unroutable messages to the terminal (kernel/log.ts binds stderr's write when it loads):
// capture them here, before loading the kernel modules, so they are counted and checked instead of printed.
const logged: string[] = [];
const realWrite = process.stderr.write.bind(process.stderr);
process.stderr.write = ((chunk: string | Uint8Array, ...rest: unknown[]) => {
  const s = typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString();
  if (s.startsWith('[hopscope kernel ')) {
    logged.push(s);
    return true;
  }
  return (realWrite as (...a: unknown[]) => boolean)(chunk, ...rest);
}) as typeof process.stderr.write;
/* eslint-disable @typescript-eslint/no-require-imports */
const { CommManager } = require('../../kernel/comms') as typeof import('../../kernel/comms');
const { Iopub } = require('../../kernel/iopub') as typeof import('../../kernel/iopub');
const { MessageFactory } = require('../../kernel/messages') as typeof import('../../kernel/messages');
const { WidgetHub } = require('../../kernel/widgets') as typeof import('../../kernel/widgets');
process.stderr.write = realWrite;

const key = fc.oneof(fc.constantFrom('value', 'title', '_model_name', '__proto__', 'constructor', 'prototype', 'data', '0'), fc.string({ maxLength: 4 }));
const pathArb = fc.oneof(
  fc.array(fc.oneof(key, fc.nat(5), fc.constantFrom(-1, 1e9)) as fc.Arbitrary<string | number>, { maxLength: 4 }),
  fc.constantFrom<(string | number)[]>(['__proto__', 'polluted'], ['constructor', 'prototype', 'polluted'], ['data', '__proto__', 'polluted']),
);
const jsonish = fc.jsonValue({ maxDepth: 2 });
const data = fc.oneof(
  { weight: 4, arbitrary: fc.record(
    {
      method: fc.oneof(
        { weight: 6, arbitrary: fc.constantFrom('update', 'update', 'request_state', 'custom', 'request_states', 'echo_update') },
        { weight: 1, arbitrary: fc.oneof(fc.string({ maxLength: 5 }), fc.constant(null)) },
      ) as fc.Arbitrary<unknown>,
      state: fc.oneof(fc.dictionary(key, jsonish, { maxKeys: 3 }), jsonish),
      buffer_paths: fc.oneof(fc.array(pathArb, { maxLength: 3 }), jsonish),
      content: jsonish,
    },
    { requiredKeys: ['method'] },
  ) },
  { weight: 1, arbitrary: jsonish },
);
const message = fc.record({
  type: fc.constantFrom('comm_open', 'comm_msg', 'comm_msg', 'comm_msg', 'comm_close', 'comm_info'),
  // Mostly the live widgets (what a frontend talks to), sometimes the control comm, a new or an unknown id.
  comm: fc.oneof(
    { weight: 6, arbitrary: fc.constantFrom('w0', 'w1') },
    { weight: 2, arbitrary: fc.constantFrom('ctl', 'new') },
    { weight: 1, arbitrary: fc.oneof(fc.string({ maxLength: 3 }), fc.constant(null), fc.integer()) },
  ) as fc.Arbitrary<unknown>,
  target: fc.oneof(fc.constantFrom('jupyter.widget.control', 'jupyter.widget'), fc.string({ maxLength: 4 })),
  // JSON text, as the wire decodes it: a "__proto__" key arrives as an own property.
  data: data.map((d) => JSON.stringify(d) ?? 'null'),
  buffers: fc.array(fc.uint8Array({ maxLength: 4 }).map((b) => Buffer.from(b)), { maxLength: 2 }),
});

function session() {
  const t = new RecordingTransport();
  const iopub = new Iopub(t, new MessageFactory());
  iopub.parent = request('execute_request', { code: '' });
  const comms = new CommManager(iopub);
  const hub = new WidgetHub(comms);
  const w = [hub.create({ state: { value: 1, title: 'a' } }), hub.create({ state: { data: [1, 2] }, buffers: { 'data.0': new Uint8Array([1]) } })];
  let events = 0;
  for (const x of w) {
    x.on('change', () => events++);
    x.on('custom', () => events++);
  }
  return { t, comms, ids: { w0: w[0].id, w1: w[1].id } as Record<string, string>, widgets: w, events: () => events };
}

test(`widget messages: ${FUZZ_RUNS} fuzzed frontend message sequences are handled or refused by the kernel's own error`, { timeout: FUZZ_TEST_TIMEOUT_MS }, (t) => {
  const protoBefore = Object.getOwnPropertyNames(Object.prototype).sort().join();
  let handled = 0;
  let refused = 0;
  logged.length = 0;
  process.stderr.write = ((chunk: string | Uint8Array, ...rest: unknown[]) => {
    const s = typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString();
    if (s.startsWith('[hopscope kernel ')) return logged.push(s) > 0;
    return (realWrite as (...a: unknown[]) => boolean)(chunk, ...rest);
  }) as typeof process.stderr.write;
  try {
    fc.assert(
      fc.property(fc.array(message, { minLength: 1, maxLength: 6 }), (msgs) => {
        const s = session();
        for (const m of msgs) {
          const id = typeof m.comm === 'string' && m.comm in s.ids ? s.ids[m.comm] : m.comm;
          const content = { comm_id: id, target_name: m.target, data: JSON.parse(m.data) as unknown };
          try {
            s.comms.handle(request(m.type, content as Record<string, unknown>, m.buffers));
            handled++;
          } catch (e) {
            // The one error the widget layer throws on purpose; KernelHandler.handle logs it and replies idle.
            assert.ok(e instanceof Error && /^widget \w+: unknown comm method /.test(e.message), `comm handler crashed: ${(e as Error)?.stack ?? String(e)}`);
            refused++;
          }
          assert.equal(Object.getOwnPropertyNames(Object.prototype).sort().join(), protoBefore, `Object.prototype polluted by ${JSON.stringify(content)}`);
          assert.equal(({} as Record<string, unknown>).polluted, undefined);
        }
        for (const sent of s.t.sent) assert.doesNotThrow(() => JSON.stringify(sent.msg.content), 'the kernel sends serialisable content');
        for (const w of s.widgets) assert.equal(Object.getPrototypeOf((w as unknown as { values: object }).values), Object.prototype, 'a widget state keeps its prototype');
      }),
      fuzzParams(),
    );
  } finally {
    process.stderr.write = realWrite;
  }
  assert.ok(handled > 0 && refused > 0, `handled ${handled}, refused ${refused}: the generator must reach both`);
  for (const line of logged) assert.match(line, /^\[hopscope kernel \S+\] comm_(open for unknown target|msg for unknown comm) /);
  t.diagnostic(`${FUZZ_RUNS} cases (seed ${FUZZ_SEED}): ${handled} messages handled, ${refused} refused by the widget layer, ${logged.length} logged as unroutable`);
});

test('regression: buffer_paths cannot reach Object.prototype or grow a list past its end; a "__proto__" state key is dropped', () => {
  const { putBuffers } = require('../../src/report/buffers') as typeof import('../../src/report/buffers');
  const state = JSON.parse('{"data": [1], "__proto__": {"x": 1}}') as Record<string, unknown>;
  const b = Buffer.from('z');
  putBuffers(state, [['__proto__', 'polluted'], ['data', '__proto__', 'polluted'], ['big', 1e9, 1e9], ['data', 5], ['data', 1], ['new', 0]], [b, b, b, b, b, b]);
  assert.equal(({} as Record<string, unknown>).polluted, undefined);
  assert.equal((state.data as unknown[]).length, 2, 'an index past the end is dropped; the slot just past the end is an append');
  assert.equal((state.data as unknown[])[1], b);
  assert.deepEqual(state.new, [b]);
  assert.equal((state.big as unknown[] | undefined)?.length ?? 0, 0, 'no billion-slot list');
  const s = session();
  s.comms.handle(request('comm_msg', { comm_id: s.ids.w0, data: JSON.parse('{"method": "update", "state": {"__proto__": {"evil": 1}, "value": 3}}') }));
  assert.equal(s.widgets[0].get('value'), 3);
  assert.equal(s.widgets[0].get('evil'), undefined);
});
