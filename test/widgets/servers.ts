// Helpers of the tests that start a Jupyter server (the classic notebook server of the live round trip, the
// JupyterLab 4 harness): a free port, condition polling without fixed sleeps, and a last-resort kernel kill.
import * as fs from 'node:fs';
import * as net from 'node:net';

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

/** Polls `check` until it returns a value (no fixed sleeps); `failed` ends the wait early with a reason. */
export async function waitFor<T>(what: string, check: () => Promise<T | undefined>, timeoutMs: number, failed: () => string | null = () => null): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const why = failed();
    if (why) throw new Error(`${what}: ${why}`);
    const v = await check().catch(() => undefined);
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`${what}: no answer in ${timeoutMs / 1000} s`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Last resort after a failed shutdown: kernels the server started under this test's runtime folder. */
export function killKernelsUsing(runtimeDir: string): void {
  for (const pid of fs.readdirSync('/proc').filter((d) => /^\d+$/.test(d))) {
    try {
      const cmd = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8');
      if (cmd.includes(runtimeDir)) process.kill(Number(pid), 'SIGKILL');
    } catch {
      // gone already, or not ours to read
    }
  }
}
