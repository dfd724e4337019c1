// Comm routing and the widget protocol 2.1 (update, echo_update, request_state, custom, control comm,
// binary buffers), with a recording transport: no kernel, no sockets.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { putBuffers, removeBuffers } from '../../src/report/buffers';
import { CommManager } from '../../kernel/comms';
import { Iopub } from '../../kernel/iopub';
import { MessageFactory } from '../../kernel/messages';
import { HOPSCOPE_VIEW, WidgetHub } from '../../kernel/widgets';
import { RecordingTransport, request } from './recording';

function setup() {
  const t = new RecordingTransport();
  const iopub = new Iopub(t, new MessageFactory());
  const exec = request('execute_request', { code: '' });
  iopub.parent = exec;
  const comms = new CommManager(iopub);
  const hub = new WidgetHub(comms);
  return { t, iopub, comms, hub, exec };
}

test('removeBuffers / putBuffers: binary values leave the JSON and come back at their paths', () => {
  const state = { a: 1, data: { values: new Float32Array([1, 2]), list: [new Uint8Array([7]), 'x'] } };
  const r = removeBuffers(state);
  assert.deepEqual(r.state, { a: 1, data: { list: [null, 'x'] } });
  assert.deepEqual(r.buffer_paths, [
    ['data', 'values'],
    ['data', 'list', 0],
  ]);
  assert.equal(r.buffers[0].byteLength, 8);
  assert.ok(state.data.values instanceof Float32Array, 'input not changed');
  const back: Record<string, unknown> = JSON.parse(JSON.stringify(r.state));
  putBuffers(back, r.buffer_paths, r.buffers);
  assert.deepEqual([...((back.data as { list: Uint8Array[] }).list[0])], [7]);
  putBuffers(back, [['new', 'deep']], [Buffer.from('z')]);
  assert.equal(String((back.new as { deep: Buffer }).deep), 'z');
});

test('create opens a jupyter.widget comm with the hopscope names, protocol 2.1.0 and buffers as frames', () => {
  const { t, hub, exec } = setup();
  const w = hub.create({ state: { view: 'v', title: 'T', data: { values: new Float32Array([1, 2, 3]) } }, buffers: { 'data.extra': new Uint8Array([5]) } });
  const [open] = t.of(exec.header.msg_id, 'iopub');
  assert.equal(open.type, 'comm_open');
  assert.equal(open.content.target_name, 'jupyter.widget');
  assert.deepEqual(open.msg.metadata, { version: '2.1.0' });
  const data = open.content.data as { state: Record<string, unknown>; buffer_paths: unknown[] };
  for (const [k, v] of Object.entries(HOPSCOPE_VIEW)) assert.equal(data.state[k], v);
  assert.deepEqual(data.buffer_paths, [
    ['data', 'values'],
    ['data', 'extra'],
  ]);
  assert.equal(open.msg.buffers.length, 2);
  w.display();
  const shown = t.of(exec.header.msg_id, 'iopub')[1];
  assert.equal(shown.type, 'display_data');
  assert.deepEqual((shown.content.data as Record<string, unknown>)['application/vnd.jupyter.widget-view+json'], { version_major: 2, version_minor: 0, model_id: w.id });
});

test('a frontend update is echoed (echo_update, buffers too), applied, and reported to change listeners', () => {
  const { t, comms, hub } = setup();
  const w = hub.create({ state: { n: 0 } });
  const changes: Record<string, unknown>[] = [];
  w.on('change', (c) => changes.push(c));
  const upd = request('comm_msg', { comm_id: w.id, data: { method: 'update', state: { n: 5 }, buffer_paths: [['blob']] } }, [Buffer.from([1, 2])]);
  comms.iopub.parent = upd;
  comms.handle(upd);
  const [echo] = t.of(upd.header.msg_id, 'iopub');
  assert.equal(echo.type, 'comm_msg');
  assert.deepEqual(echo.content.data, { method: 'echo_update', state: { n: 5 }, buffer_paths: [['blob']] });
  assert.deepEqual([...echo.msg.buffers[0]], [1, 2]);
  assert.equal(w.get('n'), 5);
  assert.deepEqual([...(w.get('blob') as Buffer)], [1, 2]);
  assert.equal(changes.length, 1);
});

test('request_state answers with the full state; set sends only the patch', () => {
  const { t, comms, hub } = setup();
  const w = hub.create({ state: { a: 1, data: { v: new Uint8Array([3]) } } });
  const rs = request('comm_msg', { comm_id: w.id, data: { method: 'request_state' } });
  comms.iopub.parent = rs;
  comms.handle(rs);
  const [full] = t.of(rs.header.msg_id, 'iopub');
  const d = full.content.data as { method: string; state: Record<string, unknown>; buffer_paths: unknown[] };
  assert.equal(d.method, 'update');
  assert.equal(d.state._model_name, 'HopscopeViewModel');
  assert.equal(d.state.a, 1);
  assert.deepEqual(d.buffer_paths, [['data', 'v']]);
  w.set({ a: 2 });
  const last = t.sent[t.sent.length - 1].msg;
  assert.deepEqual(last.content.data, { method: 'update', state: { a: 2 }, buffer_paths: [] });
});

test('custom messages both ways', () => {
  const { t, comms, hub } = setup();
  const w = hub.create({});
  const got: unknown[] = [];
  w.on('custom', (content, buffers) => {
    got.push([content, buffers.length]);
    w.send({ type: 'pong' }, [new Uint8Array([9])]);
  });
  const m = request('comm_msg', { comm_id: w.id, data: { method: 'custom', content: { type: 'ping' } } }, [Buffer.from('b')]);
  comms.iopub.parent = m;
  comms.handle(m);
  assert.deepEqual(got, [[{ type: 'ping' }, 1]]);
  const [pong] = t.of(m.header.msg_id, 'iopub');
  assert.deepEqual(pong.content.data, { method: 'custom', content: { type: 'pong' } });
  assert.equal(pong.msg.buffers.length, 1);
});

test('the control comm answers request_states with update_states of every live widget', () => {
  const { t, comms, hub } = setup();
  const a = hub.create({ state: { title: 'a', data: { v: new Float32Array([1]) } } });
  const b = hub.create({ model: { _model_name: 'OtherModel' }, state: { title: 'b' } });
  const open = request('comm_open', { comm_id: 'ctl', target_name: 'jupyter.widget.control', data: {} });
  comms.handle(open);
  const ask = request('comm_msg', { comm_id: 'ctl', data: { method: 'request_states' } });
  comms.iopub.parent = ask;
  comms.handle(ask);
  const [reply] = t.of(ask.header.msg_id, 'iopub');
  const d = reply.content.data as { method: string; states: Record<string, { model_name: string; state: Record<string, unknown> }>; buffer_paths: unknown[] };
  assert.equal(d.method, 'update_states');
  assert.deepEqual(Object.keys(d.states).sort(), [a.id, b.id].sort());
  assert.equal(d.states[b.id].model_name, 'OtherModel');
  assert.deepEqual(d.buffer_paths, [[a.id, 'state', 'data', 'v']]);
  assert.equal(reply.msg.buffers.length, 1);
});

test('comm_info lists open comms by target; closing from either side forgets the comm', () => {
  const { t, comms, hub } = setup();
  const a = hub.create({});
  const b = hub.create({});
  comms.handle(request('comm_open', { comm_id: 'ctl', target_name: 'jupyter.widget.control', data: {} }));
  assert.deepEqual(Object.keys(comms.info('jupyter.widget').comms as object).sort(), [a.id, b.id].sort());
  assert.equal(Object.keys(comms.info().comms as object).length, 3);
  let closed = 0;
  a.on('close', () => closed++);
  comms.handle(request('comm_close', { comm_id: a.id, data: {} }));
  b.close();
  assert.equal(closed, 1);
  assert.equal(a.isOpen, false);
  assert.deepEqual(Object.keys(comms.info('jupyter.widget').comms as object), []);
  assert.equal(hub.all().length, 0);
  assert.equal(t.sent[t.sent.length - 1].msg.header.msg_type, 'comm_close');
  assert.throws(() => a.send({}), /closed/);
});

test('a comm_open for an unknown target is closed right away', () => {
  const { t, comms } = setup();
  const m = request('comm_open', { comm_id: 'x1', target_name: 'no.such', data: {} });
  comms.iopub.parent = m;
  comms.handle(m);
  assert.deepEqual(t.types(m.header.msg_id), ['comm_close']);
});
