/**
 * Waiting jobs, one FIFO per client, served round-robin: the Map's insertion order is the round, and a client that
 * was just served moves to the back. Four clients sending costly work get four turns, not the whole queue. Portable.
 */
export class FairQueue<J extends { client: string }> {
  private readonly queues = new Map<string, J[]>();
  private count = 0;

  get size(): number {
    return this.count;
  }

  add(job: J): void {
    const queue = this.queues.get(job.client);
    if (queue) queue.push(job);
    else this.queues.set(job.client, [job]);
    this.count++;
  }

  /** Takes the first job `wanted` accepts, clients in turn; the client served goes to the back of the round. */
  take(wanted: (job: J) => boolean): J | undefined {
    for (const [client, queue] of this.queues) {
      const index = queue.findIndex(wanted);
      if (index < 0) continue;
      const [job] = queue.splice(index, 1);
      this.queues.delete(client);
      if (queue.length > 0) this.queues.set(client, queue);
      this.count--;
      return job;
    }
    return undefined;
  }

  /** Removes a job that leaves before its turn (timed out, abandoned); false when it is no longer waiting. */
  remove(job: J): boolean {
    const queue = this.queues.get(job.client);
    const index = queue?.indexOf(job) ?? -1;
    if (index < 0) return false;
    queue!.splice(index, 1);
    if (queue!.length === 0) this.queues.delete(job.client);
    this.count--;
    return true;
  }
}
