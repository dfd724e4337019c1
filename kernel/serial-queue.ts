// Executions run one at a time, in arrival order. After a failed cell the requests already queued are aborted
// (ipykernel's stop_on_error); unlike tslab there is no time window, so a request sent after the error runs.
import { log } from './log';

interface Entry {
  aborted: boolean;
  onAbort: () => void;
}

export class SerialQueue {
  private tail: Promise<void> = Promise.resolve();
  private readonly abortable = new Set<Entry>();

  /** Queues `run`; `onAbort` (if given) makes the entry abortable and is called instead of `run` then. */
  add(run: () => Promise<void>, onAbort?: () => void): Promise<void> {
    const entry: Entry | null = onAbort ? { aborted: false, onAbort } : null;
    if (entry) this.abortable.add(entry);
    const p = this.tail.then(async () => {
      if (entry) {
        this.abortable.delete(entry);
        if (entry.aborted) return entry.onAbort();
      }
      await run();
    });
    this.tail = p.catch((e: unknown) => log(`queued task failed: ${(e as Error)?.stack ?? String(e)}`));
    return this.tail;
  }

  /** Aborts every abortable entry queued now; returns how many. */
  abortPending(): number {
    const n = this.abortable.size;
    for (const e of this.abortable) e.aborted = true;
    this.abortable.clear();
    return n;
  }
}
