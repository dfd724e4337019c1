// Jupyter wire framing: ZeroMQ routing identities, `<IDS|MSG>`, HMAC signature over the four JSON frames,
// then raw binary buffers. tslab's own message class is not exported and cannot carry buffers, so we frame here.
// https://jupyter-client.readthedocs.io/en/latest/messaging.html#the-wire-protocol
import { createHmac, timingSafeEqual } from 'node:crypto';
import type { Header, WireMessage } from './messages';

export const DELIMITER = Buffer.from('<IDS|MSG>');

/** A frame sequence we refuse: unsigned, badly signed, or not a Jupyter message at all. */
export class WireError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'WireError';
  }
}

export interface SigningKey {
  key: string;
  /** `hmac-sha256` in every connection file Jupyter writes; other `hmac-<digest>` names work too. */
  scheme: string;
}

export function sign(k: SigningKey, parts: readonly (Buffer | string)[]): string {
  if (k.key === '') return '';
  const digest = k.scheme.startsWith('hmac-') ? k.scheme.slice(5) : k.scheme;
  const h = createHmac(digest, k.key);
  for (const p of parts) h.update(p);
  return h.digest('hex');
}

/** Frames → message. Verifies the signature before parsing any JSON, so unauthenticated bytes are never parsed. */
export function decode(frames: readonly Buffer[], k: SigningKey): WireMessage {
  const at = frames.findIndex((f) => f.equals(DELIMITER));
  if (at < 0) throw new WireError('no <IDS|MSG> delimiter in the frames');
  if (frames.length < at + 6) throw new WireError(`${frames.length - at - 1} frames after the delimiter; need 5 or more`);
  const signature = frames[at + 1].toString('ascii');
  const body = frames.slice(at + 2, at + 6);
  const want = sign(k, body);
  const a = Buffer.from(signature, 'ascii');
  const b = Buffer.from(want, 'ascii');
  if (a.length !== b.length || !timingSafeEqual(a, b)) {
    throw new WireError(`bad HMAC signature ${JSON.stringify(signature.slice(0, 16))}... (scheme ${k.scheme})`);
  }
  let parsed: unknown[];
  try {
    parsed = body.map((f) => JSON.parse(f.toString('utf8')) as unknown);
  } catch (e) {
    throw new WireError(`signed message with malformed JSON: ${(e as Error).message}`);
  }
  const [header, parent, metadata, content] = parsed;
  if (!isRecord(header) || typeof header.msg_type !== 'string') throw new WireError('header without msg_type');
  return {
    identities: frames.slice(0, at),
    header: header as unknown as Header,
    parent_header: isRecord(parent) ? (parent as Partial<Header>) : {},
    metadata: isRecord(metadata) ? metadata : {},
    content: isRecord(content) ? content : {},
    buffers: frames.slice(at + 6),
  };
}

/** Message → frames, signed. Buffers travel unsigned after the content, as the protocol says. */
export function encode(msg: WireMessage, k: SigningKey): Buffer[] {
  const body = [msg.header, msg.parent_header, msg.metadata, msg.content].map((x) => Buffer.from(JSON.stringify(x)));
  return [...msg.identities, DELIMITER, Buffer.from(sign(k, body)), ...body, ...msg.buffers.map(toBuffer)];
}

export function toBuffer(b: ArrayBufferView | ArrayBuffer): Buffer {
  if (Buffer.isBuffer(b)) return b;
  if (b instanceof ArrayBuffer) return Buffer.from(b);
  return Buffer.from(b.buffer, b.byteOffset, b.byteLength);
}

function isRecord(x: unknown): x is Record<string, unknown> {
  return typeof x === 'object' && x !== null && !Array.isArray(x);
}
