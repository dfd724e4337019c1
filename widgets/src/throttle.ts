// Coalesces redraw requests: at most one draw in flight, at most one per `interval` ms, and the latest state
// always drawn last (a streaming sweep may send many updates per second).

export class Throttle {
  private running = false;
  private again = false;
  private timer: ReturnType<typeof setTimeout> | null = null;
  private last = 0;
  private disposed = false;

  constructor(
    private readonly run: () => Promise<void>,
    private readonly interval: number,
  ) {}

  request(): void {
    if (this.disposed) return;
    if (this.running) {
      this.again = true;
      return;
    }
    if (this.timer !== null) return;
    const wait = Math.max(0, this.last + this.interval - Date.now());
    this.timer = setTimeout(() => {
      this.timer = null;
      void this.fire();
    }, wait);
  }

  dispose(): void {
    this.disposed = true;
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
  }

  private async fire(): Promise<void> {
    this.running = true;
    this.last = Date.now();
    try {
      await this.run();
    } finally {
      this.running = false;
      if (this.again) {
        this.again = false;
        this.request();
      }
    }
  }
}
