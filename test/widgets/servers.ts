// Helpers of the tests that start a Jupyter server (the classic notebook server of the live round trip, the
// JupyterLab 4 harness): condition polling without fixed sleeps, and stopping it all however the test ended.
import type { ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import type { Browser } from './browser';

export { freePort } from '../free-port';

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

/**
 * Kernels first (through the server's REST API, as a user would), then the browser, then the server (SIGTERM,
 * SIGKILL after 10 s); every step runs even when an earlier one failed, and a kernel the server could not stop
 * is killed by its pid.
 */
export async function stopJupyter(o: { origin: string; serverExited: boolean; browser: Browser | null; server: ChildProcess | null; runtimeDir: string }): Promise<void> {
  if (o.origin && !o.serverExited) {
    const running = (await fetch(`${o.origin}/api/kernels`).then((r) => r.json()).catch(() => [])) as { id: string }[];
    for (const k of running) await fetch(`${o.origin}/api/kernels/${k.id}`, { method: 'DELETE' }).catch(() => {});
  }
  await o.browser?.close().catch(() => {});
  if (o.browser) fs.rmSync(o.browser.tmp, { recursive: true, force: true });
  const server = o.server;
  if (server && server.exitCode === null && server.signalCode === null) {
    const exited = new Promise((r) => server.once('exit', r));
    server.kill('SIGTERM');
    const timer = setTimeout(() => server.kill('SIGKILL'), 10_000);
    await exited;
    clearTimeout(timer);
  }
  if (o.runtimeDir) killKernelsUsing(o.runtimeDir);
}

/** Last resort after a failed shutdown: kernels the server started under this test's runtime folder. */
function killKernelsUsing(runtimeDir: string): void {
  for (const pid of fs.readdirSync('/proc').filter((d) => /^\d+$/.test(d))) {
    try {
      const cmd = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8');
      if (cmd.includes(runtimeDir)) process.kill(Number(pid), 'SIGKILL');
    } catch {
      // gone already, or not ours to read
    }
  }
}
