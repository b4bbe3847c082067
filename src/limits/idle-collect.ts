/**
 * Gives the memory of a burst of misses back once the burst is over (docs/memory.md, "Memory that comes back").
 * A miss's source, its decoded copies and its outputs are garbage as soon as it is answered, but V8 collects only
 * when JavaScript allocates: an idle process keeps every dead buffer of the last burst resident (measured: 290 MiB
 * of JS heap + ArrayBuffers still counted a minute after 1,920 hostile misses, most of it garbage). One full
 * collection after the burst frees them; the allocator then returns the pages.
 *
 * It runs only after misses: `activity()` reads a counter that only misses move (bytes given back to the in-flight
 * budget), polled on an unref'd timer, so hits — the fast path — do no extra work at all. Pure: the collect
 * function and the clock are injected (the Node entry passes V8's gc).
 */

export interface IdleCollectOptions {
  /** A monotonically growing count of miss bytes (ByteBudget.releasedBytes). */
  activity: () => number;
  /** Runs a full collection. */
  collect: () => void;
  /** Bytes of misses since the last collection that make one worth its pause (a major GC: tens of ms). */
  minBytes: number;
  /** How often to look, in ms; a collection runs after one whole quiet period with no miss bytes moving. */
  everyMs: number;
  /** The timer functions (tests pass inert ones and call `tick` themselves). */
  timers?: { start(run: () => void, ms: number): unknown; stop(timer: unknown): void };
}

export interface IdleCollector {
  /** One look: collects when misses moved ≥ minBytes since the last collection and none moved since the last look. */
  tick(): boolean;
  /** Collections run so far. */
  readonly collections: number;
  stop(): void;
}

/** A plain interval that never keeps the process alive. */
const UNREFED_INTERVAL = {
  start: (run: () => void, ms: number) => {
    const timer = setInterval(run, ms);
    (timer as { unref?: () => void }).unref?.();
    return timer;
  },
  stop: (timer: unknown) => clearInterval(timer as ReturnType<typeof setInterval>),
};

export function createIdleCollector(options: IdleCollectOptions): IdleCollector {
  let collectedAt = options.activity();
  let lastSeen = collectedAt;
  let collections = 0;
  const tick = (): boolean => {
    const now = options.activity();
    const quiet = now === lastSeen;
    lastSeen = now;
    if (!quiet || now - collectedAt < options.minBytes) return false;
    collectedAt = now;
    collections += 1;
    options.collect();
    return true;
  };
  const timers = options.timers ?? UNREFED_INTERVAL;
  const timer = timers.start(() => void tick(), options.everyMs);
  return {
    tick,
    get collections() { return collections; },
    stop: () => timers.stop(timer),
  };
}
