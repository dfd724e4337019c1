// Measures kernel start → kernel_info_reply without Python in the loop (not a test: prints numbers).
// node --import tsx test/kernel/measure-startup.ts [runs]
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import * as zmq from 'zeromq';
import { MessageFactory } from '../../kernel/messages';
import { decode, encode } from '../../kernel/wire';

async function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

async function once(): Promise<number> {
  const key = { key: randomUUID(), scheme: 'hmac-sha256' };
  const ports = await Promise.all([0, 1, 2, 3, 4].map(freePort));
  const conn = { shell_port: ports[0], iopub_port: ports[1], stdin_port: ports[2], control_port: ports[3], hb_port: ports[4], ip: '127.0.0.1', key: key.key, transport: 'tcp', signature_scheme: key.scheme, kernel_name: 'hopscope' };
  const file = path.join(os.tmpdir(), `hopscope-conn-${process.pid}-${ports[0]}.json`);
  fs.writeFileSync(file, JSON.stringify(conn));
  const shell = new zmq.Dealer();
  shell.connect(`tcp://127.0.0.1:${conn.shell_port}`);
  const t0 = performance.now();
  const child = spawn(process.execPath, [path.join(__dirname, '..', '..', 'bin', 'hopscope.js'), 'kernel', '--config-path', file], { stdio: 'ignore' });
  const req = new MessageFactory().message('kernel_info_request', {}, null);
  await shell.send(encode(req, key));
  for (;;) {
    const reply = decode((await shell.receive()) as Buffer[], key);
    if (reply.header.msg_type === 'kernel_info_reply') break;
  }
  const ms = performance.now() - t0;
  child.kill('SIGTERM');
  shell.close();
  fs.rmSync(file, { force: true });
  return ms;
}

void (async () => {
  const runs = Number(process.argv[2] ?? 3);
  const times: number[] = [];
  for (let i = 0; i < runs; i++) times.push(await once());
  process.stdout.write(`kernel start → kernel_info_reply (ms): ${times.map((t) => t.toFixed(0)).join(', ')}; load ${os.loadavg()[0].toFixed(1)} on ${os.cpus().length} cores\n`);
})();
