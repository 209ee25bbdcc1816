/**
 * One task at a time, in call order, like Serial (serial.ts), for the streamer's read side, where nearly every
 * task finds the turn free and finishes without waiting: such a task runs at once and costs no promise. A task
 * returns a promise only when it waits; later tasks then queue behind it.
 * Tasks must not throw (the streamer's `guarded` catches): a throw would leave the turn taken.
 */
export class Turns {
  private busy = false;
  private readonly queue: (() => void)[] = [];

  /** Runs `task` now if the turn is free; returns a promise only when it (or the wait for the turn) is pending. */
  run(task: () => Promise<void> | undefined): Promise<void> | undefined {
    if (this.busy) return new Promise<void>((resolve) => this.queue.push(() => resolve(this.start(task))));
    return this.start(task);
  }

  private start(task: () => Promise<void> | undefined): Promise<void> | undefined {
    this.busy = true;
    const wait = task();
    if (!wait) {
      this.release();
      return undefined;
    }
    return wait.finally(() => this.release());
  }

  private release(): void {
    const next = this.queue.shift();
    if (next) next();
    else this.busy = false;
  }
}
