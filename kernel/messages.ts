// Jupyter message shapes (protocol 5.3) as the kernel reads and writes them, and the transport seam that
// keeps the request → reply handler apart from ZeroMQ (tests plug in a recording transport).
import { randomUUID } from 'node:crypto';

export const PROTOCOL_VERSION = '5.3';

export interface Header {
  msg_id: string;
  msg_type: string;
  session: string;
  username: string;
  date: string;
  version: string;
}

export type Json = null | boolean | number | string | Json[] | { [k: string]: Json };
export type Content = Record<string, unknown>;

export interface WireMessage {
  /** ZeroMQ routing prefix of the sender (shell/control); empty on iopub. */
  identities: Buffer[];
  header: Header;
  /** `{}` for messages that answer nothing. */
  parent_header: Partial<Header>;
  metadata: Content;
  content: Content;
  buffers: Buffer[];
}

export type Channel = 'shell' | 'control' | 'iopub';

/** Where the handler's messages go: the server signs and sends them; tests record them. */
export interface Transport {
  send(channel: Channel, msg: WireMessage): void;
}

export interface OutOptions {
  metadata?: Content;
  buffers?: Buffer[];
}

/** Builds the kernel's messages with its own session id. */
export class MessageFactory {
  readonly session = randomUUID();

  message(msgType: string, content: Content, parent: WireMessage | null, opts: OutOptions = {}): WireMessage {
    return {
      identities: [],
      header: {
        msg_id: randomUUID(),
        msg_type: msgType,
        session: this.session,
        username: 'hopscope',
        date: new Date().toISOString(),
        version: PROTOCOL_VERSION,
      },
      parent_header: parent ? parent.header : {},
      metadata: opts.metadata ?? {},
      content,
      buffers: opts.buffers ?? [],
    };
  }

  /** A reply goes back to the requester's identities on the request's socket. */
  reply(req: WireMessage, msgType: string, content: Content, opts: OutOptions = {}): WireMessage {
    return { ...this.message(msgType, content, req, opts), identities: req.identities };
  }
}

/** What the frontend sees for an exception: `error` iopub message and the `execute_reply` with status error. */
export interface ErrorContent {
  ename: string;
  evalue: string;
  traceback: string[];
}

/** A display bundle: mime type → data (JSON-able), as in `display_data` / `execute_result`. */
export interface MimeBundle {
  data: Record<string, unknown>;
  metadata: Content;
  transient?: { display_id?: string };
}
