/**
 * Admission for DNS lookups: at most `total` names in flight, at most `perZone` of them under one zone, and a slot
 * is held only until the caller's deadline.
 *
 * WHY per zone: one shared FIFO let random names under a single black-holed zone (`<random>.hole.example`, a few
 * requests per second) keep every slot busy, so every cold miss of every other host queued behind them and got 504.
 * A zone waits for its own slots without holding a global one, so it can take at most `perZone` of `total`.
 * WHY release at the deadline: the caller has given up then; keeping the slot until the resolver gives up (its own
 * retries) would let one hanging query block the next caller's lookup for longer than anyone waits for it.
 */

/** A counting semaphore whose waiters leave the queue when their deadline passes. */
class Slots {
  private active = 0;
  private readonly waiters = new Set<() => void>();

  constructor(private readonly max: number) {}

  get idle(): boolean {
    return this.active === 0 && this.waiters.size === 0;
  }

  acquire(deadline: AbortSignal): Promise<void> {
    if (deadline.aborted) return Promise.reject(deadline.reason);
    if (this.active < this.max) {
      this.active++;
      return Promise.resolve();
    }
    return new Promise((resolve, reject) => {
      const grant = () => {
        deadline.removeEventListener('abort', giveUp);
        resolve();
      };
      const giveUp = () => {
        this.waiters.delete(grant);
        reject(deadline.reason);
      };
      this.waiters.add(grant);
      deadline.addEventListener('abort', giveUp, { once: true });
    });
  }

  release(): void {
    const next = this.waiters.values().next();
    if (next.done) {
      this.active--;
      return;
    }
    this.waiters.delete(next.value);
    next.value(); // the slot passes straight to the next waiter
  }
}

/** Second-level labels under which ccTLDs register names (`bbc.co.uk`): the zone is then the last three labels. */
const SHARED_SECOND_LEVEL = new Set(['ac', 'co', 'com', 'edu', 'gov', 'net', 'org', 'ne', 'or', 'go', 'gob', 'mil']);

/**
 * The registrable domain, approximately (no public-suffix list at the edge of a hot path): the last two labels, or
 * three under a two-letter TLD with a shared second level. Coarser is safe (a zone shares its cap), finer is not.
 */
export function lookupZone(host: string): string {
  const labels = host.split('.');
  const take = labels.length >= 3 && labels.at(-1)!.length === 2 && SHARED_SECOND_LEVEL.has(labels.at(-2)!) ? 3 : 2;
  return labels.slice(-take).join('.');
}

export class LookupGate {
  private readonly global: Slots;
  private readonly zones = new Map<string, Slots>();

  constructor(total: number, private readonly perZone: number) {
    this.global = new Slots(total);
  }

  /** Runs `work` once a zone slot and then a global slot are free; both are released when it settles or at `deadline`. */
  async run<T>(zone: string, deadline: AbortSignal, work: () => Promise<T>): Promise<T> {
    const zoneSlots = this.zones.get(zone) ?? this.addZone(zone);
    try {
      await zoneSlots.acquire(deadline);
    } catch (error) {
      this.dropIfIdle(zone, zoneSlots);
      throw error;
    }
    try {
      await this.global.acquire(deadline);
      try {
        return await untilDeadline(work(), deadline);
      } finally {
        this.global.release();
      }
    } finally {
      zoneSlots.release();
      this.dropIfIdle(zone, zoneSlots);
    }
  }

  /** Zones tracked right now (busy or queued); idle ones are forgotten, so random names cannot grow the map. */
  get zoneCount(): number {
    return this.zones.size;
  }

  private addZone(zone: string): Slots {
    const slots = new Slots(this.perZone);
    this.zones.set(zone, slots);
    return slots;
  }

  private dropIfIdle(zone: string, slots: Slots): void {
    if (slots.idle && this.zones.get(zone) === slots) this.zones.delete(zone);
  }
}

/** `work`, or the deadline's reason once it fires (the work keeps running; its result is simply not awaited). */
function untilDeadline<T>(work: Promise<T>, deadline: AbortSignal): Promise<T> {
  if (deadline.aborted) return Promise.reject(deadline.reason);
  let onAbort: () => void = () => {};
  const aborted = new Promise<never>((_, reject) => {
    onAbort = () => reject(deadline.reason);
    deadline.addEventListener('abort', onAbort, { once: true });
  });
  return Promise.race([work, aborted]).finally(() => deadline.removeEventListener('abort', onAbort));
}
