/** Background work of one isolate (src/edge.ts): every request hands `settled()` to its ctx.waitUntil. */
export class Background {
  private readonly pending = new Set<Promise<unknown>>();

  readonly track = (work: Promise<unknown>): void => {
    const tracked = work.catch(() => {});
    this.pending.add(tracked);
    void tracked.finally(() => this.pending.delete(tracked));
  };

  /** Resolves once nothing is left running, or at `deadlineMs` (an edge purge waits that long for writes under way). */
  async settled(deadlineMs?: number): Promise<void> {
    if (deadlineMs === undefined) return this.drain();
    let timer: ReturnType<typeof setTimeout> | undefined;
    const deadline = new Promise<void>((resolve) => { timer = setTimeout(resolve, deadlineMs); });
    await Promise.race([this.drain(), deadline]).finally(() => clearTimeout(timer));
  }

  private async drain(): Promise<void> {
    // Work can start more work (a revalidation queues a write): wait until nothing is left.
    while (this.pending.size > 0) await Promise.allSettled([...this.pending]);
  }
}
