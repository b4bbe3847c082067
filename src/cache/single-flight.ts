/**
 * Single-flight: concurrent calls for one key share one run of the work. The entry is removed as soon as the
 * work settles, so a failure is never served to later callers (nothing half-done is cached here).
 *
 * Cancellation: each caller may pass its own AbortSignal (its request's). A caller that aborts stops waiting at
 * once; the shared work is aborted (through the signal it receives) only when EVERY caller has aborted — one
 * impatient client never cancels an image others still wait for, and a job nobody waits for is dropped before it
 * starts. A caller without a signal waits for good.
 *
 * An abandoned flight stays known until it settles: the work may no longer be cancellable (a transform already
 * running, which libvips cannot interrupt), and a caller arriving then must share it rather than start a duplicate
 * fetch and transform. If the abandoned work was in fact cancelled (it rejects), that caller starts it afresh.
 */
import { abortReason } from '../limits/abort-reason.js';

interface Flight<T> {
  promise: Promise<T>;
  controller: AbortController;
  waiting: number;
  /**
   * Every caller left. A plain flag, not `controller.signal.aborted`: on Workers a signal belongs to the request that
   * made it, and reading it from another request's handler throws ("Cannot perform I/O on behalf of a different
   * request").
   */
  abandoned: boolean;
}

export class SingleFlight<T> {
  private readonly inflight = new Map<string, Flight<T>>();

  /** Runs `work` unless a run for `key` is in flight; `joined` tells the caller whether it waited on another. */
  run(key: string, work: (signal: AbortSignal) => Promise<T>, signal?: AbortSignal): { promise: Promise<T>; joined: boolean } {
    if (signal?.aborted) return { promise: Promise.reject(abortReason(signal)), joined: false };
    const existing = this.inflight.get(key);
    if (existing?.abandoned) {
      // Everyone before us left: its result if the work still finishes, a fresh run if it was cancelled.
      const promise = this.wait(existing, signal).catch(() => this.run(key, work, signal).promise);
      return { promise, joined: true };
    }
    const flight = existing ?? this.start(key, work);
    return { promise: this.wait(flight, signal), joined: existing !== undefined };
  }

  get size(): number {
    return this.inflight.size;
  }

  private start(key: string, work: (signal: AbortSignal) => Promise<T>): Flight<T> {
    const controller = new AbortController();
    const flight: Flight<T> = { controller, waiting: 0, abandoned: false, promise: undefined as unknown as Promise<T> };
    flight.promise = work(controller.signal).finally(() => {
      if (this.inflight.get(key) === flight) this.inflight.delete(key);
    });
    this.inflight.set(key, flight);
    return flight;
  }

  /** This caller's view of the flight: the shared result, or its own abort, whichever comes first. */
  private wait(flight: Flight<T>, signal?: AbortSignal): Promise<T> {
    flight.waiting++;
    if (!signal) return flight.promise;
    return new Promise<T>((resolve, reject) => {
      const onAbort = () => {
        // Nobody waits any more: the work may drop what it has not started (the flight stays until it settles).
        if (--flight.waiting === 0) abandon(flight, abortReason(signal));
        reject(abortReason(signal));
      };
      signal.addEventListener('abort', onAbort, { once: true });
      flight.promise.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
    });
  }
}

/**
 * Cancels the shared work. On Workers the last caller to leave may run in another request's context than the one that
 * started the work, where aborting its signal throws: the work then runs to its end (its own deadlines bound it).
 */
function abandon(flight: { controller: AbortController; abandoned: boolean }, reason: unknown): void {
  flight.abandoned = true;
  try {
    flight.controller.abort(reason);
  } catch {
    // another request's I/O context (Workers): nothing to cancel from here
  }
}
