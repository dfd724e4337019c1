// Exits the kernel when the process that started it dies, as ipykernel's ParentPollerUnix does: a kernel whose
// Jupyter server was killed (SIGKILL, a crashed terminal) would otherwise run on forever holding its memory.
// Jupyter names its pid in JPY_PARENT_PID (jupyter_client launcher.py); without it, being re-parented (our
// parent pid changing, typically to 1 or a subreaper) means the same.
import * as fs from 'node:fs';
import { log } from './log';

export const POLL_MS = 1000;

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM'; // exists, owned by someone else
  }
  // A parent that died but was not reaped yet is a zombie: as good as gone.
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z';
  } catch {
    return true; // no /proc (macOS): kill(0) said it exists
  }
}

/** Starts polling (unref'd: it never keeps the process alive by itself). `before` runs just before exit. */
export function stopWhenOrphaned(before: () => void, env: NodeJS.ProcessEnv = process.env): NodeJS.Timeout | null {
  if (process.platform === 'win32') return null; // Windows passes a handle, not a pid (ParentPollerWindows)
  const named = Number(env.JPY_PARENT_PID);
  const jupyter = Number.isInteger(named) && named > 1 ? named : null;
  const original = process.ppid;
  const timer = setInterval(() => {
    const gone = jupyter !== null ? !alive(jupyter) : original > 1 && process.ppid !== original;
    if (!gone) return;
    log(`parent process ${jupyter ?? original} is gone; exiting`);
    try {
      before();
    } finally {
      process.exit(0);
    }
  }, POLL_MS);
  timer.unref();
  return timer;
}
