// Wire framing: identities, delimiter, HMAC-SHA256 over the four JSON frames, raw buffers after them.
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { test } from 'node:test';
import { MessageFactory } from '../../kernel/messages';
import { DELIMITER, WireError, decode, encode } from '../../kernel/wire';

const key = { key: 'secret-key', scheme: 'hmac-sha256' };

function frames(parts: unknown[], k = key.key, ids: Buffer[] = [Buffer.from('client-1')], buffers: Buffer[] = []): Buffer[] {
  const body = parts.map((p) => Buffer.from(JSON.stringify(p)));
  const h = createHmac('sha256', k);
  for (const b of body) h.update(b);
  return [...ids, DELIMITER, Buffer.from(h.digest('hex')), ...body, ...buffers];
}

const header = { msg_id: 'm1', msg_type: 'comm_msg', session: 's', username: 'u', date: '', version: '5.3' };

test('decode reads identities, the four JSON frames and raw buffers', () => {
  const buf = Buffer.from([1, 2, 3]);
  const m = decode(frames([header, {}, { version: '2.1.0' }, { comm_id: 'c', data: {} }], key.key, [Buffer.from('a'), Buffer.from('b')], [buf]), key);
  assert.deepEqual(m.identities.map(String), ['a', 'b']);
  assert.equal(m.header.msg_type, 'comm_msg');
  assert.deepEqual(m.metadata, { version: '2.1.0' });
  assert.deepEqual(m.content, { comm_id: 'c', data: {} });
  assert.deepEqual([...m.buffers[0]], [1, 2, 3]);
});

test('a bad signature is rejected before any JSON is parsed', () => {
  const f = frames([header, {}, {}, {}], 'other-key');
  assert.throws(() => decode(f, key), (e: unknown) => e instanceof WireError && /bad HMAC/.test((e as Error).message));
  const garbage = [DELIMITER, Buffer.from('00'), Buffer.from('{not json'), Buffer.from('{}'), Buffer.from('{}'), Buffer.from('{}')];
  assert.throws(() => decode(garbage, key), /bad HMAC/);
});

test('a message without delimiter or with too few frames is rejected', () => {
  assert.throws(() => decode([Buffer.from('x'), Buffer.from('y')], key), /delimiter/);
  assert.throws(() => decode([DELIMITER, Buffer.from('sig'), Buffer.from('{}')], key), /need 5 or more/);
});

test('an empty key means unsigned messages (Jupyter with signing off)', () => {
  const body = [header, {}, {}, {}].map((p) => Buffer.from(JSON.stringify(p)));
  const m = decode([DELIMITER, Buffer.from(''), ...body], { key: '', scheme: 'hmac-sha256' });
  assert.equal(m.header.msg_id, 'm1');
});

test('encode → decode round trip keeps buffers and identities, signature verifies', () => {
  const f = new MessageFactory();
  const req = decode(frames([header, {}, {}, {}]), key);
  const reply = f.reply(req, 'comm_info_reply', { status: 'ok', comms: {} }, { buffers: [Buffer.from('raw bytes')] });
  const wire = encode(reply, key);
  assert.equal(String(wire[0]), 'client-1');
  const back = decode(wire, key);
  assert.equal(back.header.msg_type, 'comm_info_reply');
  assert.equal(back.parent_header.msg_id, 'm1');
  assert.equal(back.header.session, f.session);
  assert.equal(String(back.buffers[0]), 'raw bytes');
  // Buffers are not part of the signature: the same message with other bytes still verifies.
  wire[wire.length - 1] = Buffer.from('changed');
  assert.equal(String(decode(wire, key).buffers[0]), 'changed');
});
