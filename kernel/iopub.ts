// IOPub publishing: every kernel-originated message carries the parent header of the request being executed
// (recorded when its execution starts, not when it arrived); stream text is coalesced per tick so a loop that
// prints thousands of lines sends a few messages, and is flushed before anything else so order is kept.
// Text older than STREAM_MAX_AGE_MS goes out at the next write, so a synchronous loop's prints still appear.
import type { Content, MessageFactory, OutOptions, Transport, WireMessage } from './messages';

type StreamName = 'stdout' | 'stderr';

const STREAM_MAX_AGE_MS = 100;

export class Iopub {
  /** The request whose execution owns kernel-originated output right now. */
  parent: WireMessage | null = null;
  private pending: { name: StreamName; parent: WireMessage | null; text: string; since: number } | null = null;
  private scheduled = false;

  constructor(
    private readonly transport: Transport,
    readonly factory: MessageFactory,
  ) {}

  publish(msgType: string, content: Content, opts: OutOptions = {}, parent: WireMessage | null = this.parent): void {
    this.flush();
    this.transport.send('iopub', this.factory.message(msgType, content, parent, opts));
  }

  status(state: 'busy' | 'idle' | 'starting', parent: WireMessage | null): void {
    this.publish('status', { execution_state: state }, {}, parent);
  }

  stream(name: StreamName, text: string, parent: WireMessage | null = this.parent): void {
    if (text === '') return;
    const p = this.pending;
    if (p && p.name === name && p.parent === parent) {
      p.text += text;
      if (Date.now() - p.since >= STREAM_MAX_AGE_MS) this.flush();
    } else {
      this.flush();
      this.pending = { name, parent, text, since: Date.now() };
    }
    if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(() => {
        this.scheduled = false;
        this.flush();
      });
    }
  }

  flush(): void {
    const p = this.pending;
    if (!p) return;
    this.pending = null;
    this.transport.send('iopub', this.factory.message('stream', { name: p.name, text: p.text }, p.parent));
  }
}
