// The ZeroMQ side: tslab's ZmqServer binds the five sockets and feeds shell/control frames here; we decode
// them with our own framing (buffers, HMAC checked), hand them to the KernelHandler, and serialise sends per
// socket (zeromq.js allows one send in flight per socket).
import * as fs from 'node:fs';
import type * as zmq from 'zeromq';
import { ZmqServer } from 'tslab/dist/jupyter';
import type { KernelHandler } from './handler';
import { log } from './log';
import type { Channel, Transport, WireMessage } from './messages';
import { type SigningKey, decode, encode } from './wire';

type Sock = zmq.Router | zmq.Publisher;

/**
 * Sends go straight to libzmq when nothing is queued, so they leave even while a cell blocks the event loop
 * (libzmq sends from its own thread); when the socket is busy (zeromq.js allows one send in flight; a burst of
 * a few hundred sync sends hits that) they queue behind it, in order, instead of being dropped.
 */
export class SocketTransport implements Transport {
  private readonly lanes = new Map<Channel, { tail: Promise<void>; queued: number }>();
  private sockets: () => Partial<Record<Channel, Sock>> = () => ({});
  private key: SigningKey | null = null;
  private closed = false;

  attach(key: SigningKey, sockets: () => Partial<Record<Channel, Sock>>): void {
    this.key = key;
    this.sockets = sockets;
  }

  /** After shutdown nothing more is sent (late stream output would hit closed sockets). */
  close(): void {
    this.closed = true;
  }

  send(channel: Channel, msg: WireMessage): void {
    if (this.closed) return;
    const sock = this.sockets()[channel];
    if (!sock || !this.key) {
      log(`dropped ${msg.header.msg_type} on ${channel}: sockets not bound yet`);
      return;
    }
    const frames = encode(msg, this.key);
    const failed = (e: unknown) => log(`send ${msg.header.msg_type} on ${channel} failed: ${(e as Error).message}`);
    let lane = this.lanes.get(channel);
    if (!lane) this.lanes.set(channel, (lane = { tail: Promise.resolve(), queued: 0 }));
    if (lane.queued === 0) {
      try {
        lane.tail = sock.send(frames).then(() => {}, failed);
        return;
      } catch (e) {
        if (!/busy/i.test((e as Error).message)) return failed(e);
        // busy: queue it below
      }
    }
    const l = lane;
    l.queued++;
    l.tail = l.tail
      .then(() => sock.send(frames))
      .then(() => {}, failed)
      .finally(() => l.queued--);
  }

  /** Resolves when everything sent so far has left. */
  async flush(): Promise<void> {
    await Promise.all([...this.lanes.values()].map((l) => l.tail));
  }
}

export class HopscopeServer extends ZmqServer {
  private rejected = 0;
  private readonly key: SigningKey;

  constructor(
    private readonly kernel: KernelHandler,
    transport: SocketTransport,
    configPath: string,
  ) {
    super(kernel, configPath);
    // Read the key now (tslab reads the file again in init): replies must be signable from the first message.
    const conn = JSON.parse(fs.readFileSync(configPath, 'utf8')) as { key?: string; signature_scheme?: string };
    this.key = { key: conn.key ?? '', scheme: conn.signature_scheme || 'hmac-sha256' };
    // Sockets are created inside tslab's init; look them up at send time.
    transport.attach(this.key, () => ({ shell: this.shell, control: this.control, iopub: this.iopub }));
  }

  /** tslab calls this for shell and control frames alike; the socket tells them apart. */
  override async handleShellMessage(sock: zmq.Router, ...frames: Buffer[]): Promise<void> {
    const channel = sock === this.control ? 'control' : 'shell';
    let msg: WireMessage;
    try {
      msg = decode(frames, this.key);
    } catch (e) {
      this.rejected++;
      log(`rejected a message on ${channel} (${this.rejected} so far): ${(e as Error).message}`);
      return;
    }
    await this.kernel.handle(msg, channel);
  }

  get rejectedCount(): number {
    return this.rejected;
  }
}
