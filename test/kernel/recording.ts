// Test helpers: a transport that records what the kernel sends, and requests built like a frontend's.
import { randomUUID } from 'node:crypto';
import type { Channel, Content, Transport, WireMessage } from '../../kernel/messages';

export class RecordingTransport implements Transport {
  readonly sent: { channel: Channel; msg: WireMessage }[] = [];
  send(channel: Channel, msg: WireMessage): void {
    this.sent.push({ channel, msg });
  }
  /** Messages on `channel` answering request `parentId`, as [msg_type, content]. */
  of(parentId: string, channel?: Channel): { type: string; content: Content; msg: WireMessage }[] {
    return this.sent
      .filter((s) => s.msg.parent_header.msg_id === parentId && (!channel || s.channel === channel))
      .map((s) => ({ type: s.msg.header.msg_type, content: s.msg.content, msg: s.msg }));
  }
  types(parentId: string, channel?: Channel): string[] {
    return this.of(parentId, channel).map((m) => (m.type === 'status' ? `status:${String(m.content.execution_state)}` : m.type));
  }
}

export function request(msgType: string, content: Content, buffers: Buffer[] = []): WireMessage {
  return {
    identities: [Buffer.from('frontend')],
    header: { msg_id: randomUUID(), msg_type: msgType, session: 'frontend-session', username: 'test', date: new Date().toISOString(), version: '5.3' },
    parent_header: {},
    metadata: {},
    content,
    buffers,
  };
}
