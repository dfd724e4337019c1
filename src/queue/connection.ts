// Redis connections from a URL (redis://[user:password@]HOST:PORT/N, rediss:// for TLS), checked once up
// front so a wrong address fails with a message instead of BullMQ retrying silently forever.
import IORedis, { type Redis } from 'ioredis';
import { ConfigError } from '../errors';

/** The URL without its password (for logs and summary.json). */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return url;
  }
}

function checkUrl(url: string): void {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new ConfigError(`--queue ${JSON.stringify(url)} is not a URL; use redis://HOST:PORT/DB (rediss:// for TLS)`);
  }
  if (u.protocol !== 'redis:' && u.protocol !== 'rediss:')
    throw new ConfigError(`--queue ${redactUrl(url)}: the scheme must be redis:// or rediss:// (TLS), got ${u.protocol}`);
}

/** A connection BullMQ can block on (maxRetriesPerRequest null, as BullMQ workers require). */
export async function connect(url: string): Promise<Redis> {
  checkUrl(url);
  const probe = new IORedis(url, { lazyConnect: true, maxRetriesPerRequest: 1, retryStrategy: () => null, connectTimeout: 5000 });
  // ioredis reports the cause (ECONNREFUSED, a TLS failure, NOAUTH) as an event; the rejection only says "closed".
  let cause: Error | null = null;
  probe.on('error', (e: Error) => (cause ??= e));
  try {
    await probe.connect();
    await probe.ping();
  } catch (e) {
    throw new ConfigError(`cannot reach Redis at ${redactUrl(url)}: ${(cause ?? (e as Error)).message}; start redis-server there (docs/cluster.md) or fix --queue`);
  } finally {
    probe.disconnect();
  }
  const conn = new IORedis(url, { maxRetriesPerRequest: null });
  // Reconnection is ioredis's job; an error event without a listener would crash the process.
  conn.on('error', () => {});
  return conn;
}
