// What names a job: content hashes of folders (not paths), content-addressed shard ids, and Redis URLs
// checked up front with messages that name the address (never the password).
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { ConfigError } from '../../src/errors';
import { connect } from '../../src/queue/connection';
import { contentHash, jsonHash } from '../../src/queue/hash';
import { queueName, runIdOf, shardId } from '../../src/queue/protocol';
import { redactUrl } from '../../src/queue';

function folder(files: Record<string, string>): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hopscope-hash-'));
  for (const [f, text] of Object.entries(files)) {
    fs.mkdirSync(path.dirname(path.join(dir, f)), { recursive: true });
    fs.writeFileSync(path.join(dir, f), text);
  }
  return dir;
}

describe('queue protocol', () => {
  it('hashes a folder by its files, not its path; one changed byte or file name changes the hash', () => {
    const files = { 'config.json': '{"a":1}', 'model.safetensors': 'weights', 'sub/tokenizer.json': '{}' };
    const a = folder(files);
    const b = folder({ ...files, '.cache': 'ignored' });
    const c = folder({ ...files, 'model.safetensors': 'weighTs' });
    const d = folder({ 'config.json': '{"a":1}', 'model2.safetensors': 'weights', 'sub/tokenizer.json': '{}' });
    try {
      assert.equal(contentHash(a), contentHash(b));
      assert.match(contentHash(a), /^[0-9a-f]{64}$/);
      assert.notEqual(contentHash(a), contentHash(c));
      assert.notEqual(contentHash(a), contentHash(d));
      // A file changed in place (new size/mtime) is hashed again, not served from the process's memo.
      fs.writeFileSync(path.join(a, 'config.json'), '{"a":2}');
      assert.notEqual(contentHash(a), contentHash(b));
    } finally {
      for (const x of [a, b, c, d]) fs.rmSync(x, { recursive: true, force: true });
    }
    assert.throws(() => contentHash('/no/such/model'), /cannot hash \/no\/such\/model/);
  });

  it('names runs, queues and shards by content, with ids BullMQ accepts', () => {
    const spec = { kind: 'cross-patch', version: 1, limit: 3 };
    assert.equal(jsonHash({ b: 1, a: [1, { d: 2, c: 3 }] }), jsonHash({ a: [1, { c: 3, d: 2 }], b: 1 }));
    const run = runIdOf(spec, 'm'.repeat(64), 'd'.repeat(64));
    assert.equal(run, runIdOf({ limit: 3, version: 1, kind: 'cross-patch' }, 'm'.repeat(64), 'd'.repeat(64)));
    assert.notEqual(run, runIdOf({ ...spec, limit: 4 }, 'm'.repeat(64), 'd'.repeat(64)));
    assert.notEqual(run, runIdOf(spec, 'n'.repeat(64), 'd'.repeat(64)));
    const id = shardId(run, 0, ['a|b|1', 'a|c|1']);
    assert.equal(id, shardId(run, 0, ['a|b|1', 'a|c|1']));
    assert.notEqual(id, shardId(run, 1, ['a|b|1', 'a|c|1']));
    assert.notEqual(id, shardId(run, 0, ['a|c|1', 'a|b|1']));
    assert.ok(!id.includes(':') && !/^\d+$/.test(id), 'BullMQ refuses ids with ":" and integer ids');
    assert.notEqual(queueName('m'.repeat(64), 'd'.repeat(64)), queueName('m'.repeat(64), 'none'));
  });

  it('refuses a non-Redis URL and names an unreachable address without its password', async () => {
    await assert.rejects(connect('http://127.0.0.1:6379'), (e: Error) => e instanceof ConfigError && /scheme must be redis:\/\/ or rediss:\/\//.test(e.message));
    await assert.rejects(connect('not a url'), (e: Error) => e instanceof ConfigError && /is not a URL/.test(e.message));
    // A port nobody listens on (taken and released).
    const port = await new Promise<number>((r) => {
      const s = net.createServer().listen(0, '127.0.0.1', () => {
        const p = (s.address() as net.AddressInfo).port;
        s.close(() => r(p));
      });
    });
    await assert.rejects(connect(`redis://:s3cret@127.0.0.1:${port}/0`), (e: Error) => {
      assert.ok(e instanceof ConfigError);
      assert.match(e.message, new RegExp(`cannot reach Redis at redis://:\\*\\*\\*@127\\.0\\.0\\.1:${port}/0`));
      assert.ok(!e.message.includes('s3cret'));
      return true;
    });
    assert.equal(redactUrl('rediss://user:pw@10.0.0.5:6380/2'), 'rediss://user:***@10.0.0.5:6380/2');
  });
});
