// Jupyter comms: kernel- and frontend-opened channels keyed by comm_id, routed from shell `comm_*` requests and
// published on iopub. tslab has none (it answers comm_info_request with a complete_reply); this is the full set.
// https://jupyter-client.readthedocs.io/en/latest/messaging.html#custom-messages
import { log } from './log';
import type { Iopub } from './iopub';
import type { Content, WireMessage } from './messages';
import { randomUUID } from 'node:crypto';

export type CommMsgHandler = (data: Content, buffers: Buffer[], msg: WireMessage) => void;
export type CommCloseHandler = (data: Content, msg: WireMessage | null) => void;

/** One open comm. Handlers are plain fields so a target can wire them once. */
export class Comm {
  onMsg: CommMsgHandler | null = null;
  onClose: CommCloseHandler | null = null;
  private closed = false;

  constructor(
    readonly id: string,
    readonly targetName: string,
    private readonly manager: CommManager,
  ) {}

  get isOpen(): boolean {
    return !this.closed;
  }

  send(data: Content, buffers: Buffer[] = [], metadata: Content = {}): void {
    if (this.closed) throw new Error(`comm ${this.id} (${this.targetName}) is closed; cannot send ${String(data.method ?? '')}`);
    this.manager.iopub.publish('comm_msg', { comm_id: this.id, data }, { metadata, buffers });
  }

  /** Closes from the kernel side and tells the frontend. */
  close(data: Content = {}): void {
    if (this.closed) return;
    this.manager.iopub.publish('comm_close', { comm_id: this.id, data });
    this.dropped(data, null);
  }

  /** @internal the comm is gone (either side closed it). */
  dropped(data: Content, msg: WireMessage | null): void {
    if (this.closed) return;
    this.closed = true;
    this.manager.forget(this.id);
    this.onClose?.(data, msg);
  }
}

/** Called when the frontend opens a comm for `target_name`. */
export type CommTarget = (comm: Comm, data: Content, buffers: Buffer[], msg: WireMessage) => void;

export class CommManager {
  private readonly comms = new Map<string, Comm>();
  private readonly targets = new Map<string, CommTarget>();

  constructor(readonly iopub: Iopub) {}

  registerTarget(name: string, target: CommTarget): void {
    this.targets.set(name, target);
  }

  /** Opens a comm from the kernel (iopub `comm_open`). */
  open(targetName: string, data: Content, opts: { metadata?: Content; buffers?: Buffer[]; id?: string } = {}): Comm {
    const comm = new Comm(opts.id ?? randomUUID().replace(/-/g, ''), targetName, this);
    this.comms.set(comm.id, comm);
    this.iopub.publish(
      'comm_open',
      { comm_id: comm.id, target_name: targetName, data },
      { metadata: opts.metadata ?? {}, buffers: opts.buffers ?? [] },
    );
    return comm;
  }

  get(id: string): Comm | undefined {
    return this.comms.get(id);
  }

  /** `comm_info_reply` content: open comms, optionally only those of one target. */
  info(targetName?: string): Content {
    const comms: Record<string, { target_name: string }> = {};
    for (const c of this.comms.values()) {
      if (targetName == null || targetName === '' || c.targetName === targetName) comms[c.id] = { target_name: c.targetName };
    }
    return { status: 'ok', comms };
  }

  /** Routes a frontend `comm_open` / `comm_msg` / `comm_close` request. */
  handle(msg: WireMessage): void {
    const c = msg.content;
    const id = String(c.comm_id ?? '');
    const data = (typeof c.data === 'object' && c.data !== null ? c.data : {}) as Content;
    switch (msg.header.msg_type) {
      case 'comm_open': {
        const targetName = String(c.target_name ?? '');
        const target = this.targets.get(targetName);
        if (!target) {
          // As ipykernel does: tell the frontend the comm is dead instead of leaving it dangling.
          log(`comm_open for unknown target ${JSON.stringify(targetName)}; closing comm ${id}`);
          this.iopub.publish('comm_close', { comm_id: id, data: {} });
          return;
        }
        const comm = new Comm(id, targetName, this);
        this.comms.set(id, comm);
        target(comm, data, msg.buffers, msg);
        return;
      }
      case 'comm_msg': {
        const comm = this.comms.get(id);
        if (!comm) {
          log(`comm_msg for unknown comm ${id} (method ${String(data.method ?? '?')}); ignored`);
          return;
        }
        comm.onMsg?.(data, msg.buffers, msg);
        return;
      }
      case 'comm_close': {
        this.comms.get(id)?.dropped(data, msg);
        return;
      }
    }
  }

  /** @internal */
  forget(id: string): void {
    this.comms.delete(id);
  }

  /** Closes every comm (kernel shutdown). */
  closeAll(): void {
    for (const c of [...this.comms.values()]) c.close();
  }
}
