// The request → reply handler without sockets: a recording transport and a stand-in cell runner that
// understands a few commands (`value <json>`, `throw <msg>`, `sleep <ms>`, `abortable <ms>`, `widget`).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Executor } from 'tslab/dist/executor';
import type { CellRunner, RunOutcome } from '../../kernel/cell-runner';
import { errorContent } from '../../kernel/display';
import { currentSignal } from '../../kernel/execution';
import { KernelHandler } from '../../kernel/handler';
import { defaultMagics } from '../../kernel/magics';
import { widgets } from '../../kernel/widgets';
import * as fake from './fixtures/fake-library';
import { RecordingTransport, request } from './recording';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

class StandInRunner implements CellRunner {
  readonly executor = {} as Executor;
  readonly bound = new Map<string, unknown>();
  ran: string[] = [];
  async run(code: string): Promise<RunOutcome> {
    this.ran.push(code);
    const [cmd, ...rest] = code.trim().split(' ');
    const arg = rest.join(' ');
    try {
      switch (cmd) {
        case 'value':
          return { ok: true, hasValue: true, value: JSON.parse(arg) };
        case 'throw':
          throw new RangeError(arg);
        case 'sleep':
          await sleep(Number(arg));
          return { ok: true, hasValue: false };
        case 'abortable': {
          const s = currentSignal();
          for (let t = 0; t < Number(arg); t += 10) {
            s.throwIfAborted();
            await sleep(10);
          }
          return { ok: true, hasValue: false };
        }
        case 'widget': {
          await sleep(5);
          const w = widgets.create({ state: { title: 'from a cell' } });
          return { ok: true, hasValue: true, value: w };
        }
        default:
          return { ok: true, hasValue: true, value: code };
      }
    } catch (e) {
      return { ok: false, error: errorContent(e) };
    }
  }
  async bind(name: string, value: unknown) {
    this.bound.set(name, value);
  }
  lookup(name: string) {
    return this.bound.get(name);
  }
  hardInterrupts = 0;
  interrupt() {
    this.hardInterrupts++;
  }
  warm() {}
}

function kernel() {
  const t = new RecordingTransport();
  const runner = new StandInRunner();
  const k = new KernelHandler({ transport: t, runner, magics: defaultMagics(), library: () => fake.contract, version: '9.9.9' });
  return { t, runner, k };
}

test('kernel_info_reply says hopscope/typescript, between busy and idle with the request as parent', async () => {
  const { t, k } = kernel();
  const req = request('kernel_info_request', {});
  await k.handle(req, 'shell');
  assert.deepEqual(t.types(req.header.msg_id), ['status:busy', 'kernel_info_reply', 'status:idle']);
  const reply = t.of(req.header.msg_id, 'shell')[0].content as Record<string, unknown>;
  assert.equal(reply.implementation, 'hopscope');
  assert.equal(reply.implementation_version, '9.9.9');
  assert.equal((reply.language_info as { name: string }).name, 'typescript');
  assert.equal(reply.protocol_version, '5.3');
});

test('execute: execute_input, execute_result for the last value, ok reply with the count', async () => {
  const { t, k } = kernel();
  const req = request('execute_request', { code: 'value {"a": [1, 2]}' });
  await k.handle(req, 'shell');
  assert.deepEqual(t.types(req.header.msg_id), ['status:busy', 'execute_input', 'execute_result', 'execute_reply', 'status:idle']);
  const [, input, result, reply] = t.of(req.header.msg_id);
  assert.deepEqual(input.content, { code: 'value {"a": [1, 2]}', execution_count: 1 });
  assert.deepEqual(result.content, { execution_count: 1, data: { 'text/plain': '{ a: [ 1, 2 ] }' }, metadata: {} });
  assert.equal(reply.content.status, 'ok');
  assert.equal(reply.content.execution_count, 1);
  assert.equal(t.of(req.header.msg_id, 'shell')[0].msg.identities[0].toString(), 'frontend');
});

test('a failing cell sends error and an error reply with ename/evalue/traceback', async () => {
  const { t, k } = kernel();
  const req = request('execute_request', { code: 'throw out of range' });
  await k.handle(req, 'shell');
  const err = t.of(req.header.msg_id).find((m) => m.type === 'error')!;
  assert.equal(err.content.ename, 'RangeError');
  assert.equal(err.content.evalue, 'out of range');
  assert.equal((err.content.traceback as string[])[0], 'RangeError: out of range');
  const reply = t.of(req.header.msg_id, 'shell')[0].content;
  assert.equal(reply.status, 'error');
  assert.equal(reply.ename, 'RangeError');
  assert.deepEqual(reply.traceback, err.content.traceback);
});

test('after an error only requests already queued are aborted: no time window', async () => {
  const { t, k } = kernel();
  const failing = request('execute_request', { code: 'throw first' });
  const queued = request('execute_request', { code: 'value 2' });
  const p1 = k.handle(failing, 'shell');
  const p2 = k.handle(queued, 'shell');
  await Promise.all([p1, p2]);
  assert.equal(t.of(queued.header.msg_id, 'shell')[0].content.status, 'aborted');
  // Sent right after the failure: runs (tslab would abort anything within 200 ms).
  const next = request('execute_request', { code: 'value 3' });
  await k.handle(next, 'shell');
  assert.equal(t.of(next.header.msg_id, 'shell')[0].content.status, 'ok');
  // stop_on_error: false keeps the queue.
  const soft = request('execute_request', { code: 'throw soft', stop_on_error: false });
  const after = request('execute_request', { code: 'value 4' });
  await Promise.all([k.handle(soft, 'shell'), k.handle(after, 'shell')]);
  assert.equal(t.of(after.header.msg_id, 'shell')[0].content.status, 'ok');
});

test('comm_info_request gets a comm_info_reply (tslab answers complete_reply)', async () => {
  const { t, k } = kernel();
  k.widgetHub.create({});
  const req = request('comm_info_request', { target_name: 'jupyter.widget' });
  await k.handle(req, 'shell');
  const reply = t.of(req.header.msg_id, 'shell')[0];
  assert.equal(reply.type, 'comm_info_reply');
  assert.equal(Object.keys(reply.content.comms as object).length, 1);
});

test('interrupt_request on control aborts the running cell through its AbortSignal', async () => {
  const { t, runner, k } = kernel();
  const req = request('execute_request', { code: 'abortable 5000' });
  const running = k.handle(req, 'shell');
  await sleep(30);
  const intr = request('interrupt_request', {});
  await k.handle(intr, 'control');
  assert.equal(t.of(intr.header.msg_id, 'control')[0].type, 'interrupt_reply');
  await running;
  assert.equal(runner.hardInterrupts, 0, 'stopped by the signal, not by the hard stop after the grace period');
  const reply = t.of(req.header.msg_id, 'shell')[0].content;
  assert.equal(reply.status, 'error');
  assert.equal(reply.ename, 'KeyboardInterrupt');
});

test('widgets created by an execution carry its parent header even when other requests arrive meanwhile', async () => {
  const { t, k } = kernel();
  const exec = request('execute_request', { code: 'widget' });
  const running = k.handle(exec, 'shell');
  const info = request('kernel_info_request', {});
  await k.handle(info, 'shell');
  await running;
  const open = t.sent.find((s) => s.msg.header.msg_type === 'comm_open')!;
  assert.equal(open.msg.parent_header.msg_id, exec.header.msg_id);
  const result = t.of(exec.header.msg_id).find((m) => m.type === 'execute_result')!;
  assert.ok('application/vnd.jupyter.widget-view+json' in (result.content.data as object));
});

test('magics run through the handler: results bound to _ and --as, bad arguments are error replies', async () => {
  const { t, runner, k } = kernel();
  const load = request('execute_request', { code: '%load teaching --as m' });
  await k.handle(load, 'shell');
  assert.equal(t.of(load.header.msg_id, 'shell')[0].content.status, 'ok');
  assert.equal(runner.bound.get('m'), runner.bound.get('_'));
  const bad = request('execute_request', { code: '%hooks --filter (' });
  await k.handle(bad, 'shell');
  const r = t.of(bad.header.msg_id, 'shell')[0].content;
  assert.equal(r.ename, 'UsageError');
  assert.match(String(r.evalue), /--filter "\("/);
  const mixed = request('execute_request', { code: 'sleep 1\n%hooks --layer 1 --filter resid_post\nvalue 7' });
  await k.handle(mixed, 'shell');
  assert.deepEqual(runner.ran.slice(-2), ['sleep 1', 'value 7']);
  assert.equal((runner.bound.get('_') as unknown[]).length, 1);
  const res = t.of(mixed.header.msg_id).find((m) => m.type === 'execute_result')!;
  assert.deepEqual(res.content.data, { 'text/plain': '7' });
});
