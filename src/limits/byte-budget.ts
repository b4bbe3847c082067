/**
 * One memory budget for the bytes a miss brings into the process (IMGRELAY_MAX_INFLIGHT_MB, DESIGN.md "Bounded
 * cost"): source bytes being fetched, held for a transform, and queued for a store write. Hits take nothing from it,
 * so they keep being served while misses are refused with 503 E_OVERLOADED.
 *
 * Counting is by reservation, not by measuring the heap: a fetch reserves the declared Content-Length before reading
 * (else it grows its hold chunk by chunk), so a burst of large bodies is refused before the bytes arrive instead of
 * after RSS has grown. Pure and portable (no `node:` imports): the Node and Workers entries share it.
 */
import { RelayError } from '../errors.js';

/** Seconds a refused client is told to wait: in-flight fetches finish or hit their deadline within seconds. */
export const OVERLOADED_RETRY_AFTER_S = 2;

/** Bytes one miss holds; grown while its source streams in, given back once when nothing holds them any more. */
export interface ByteHold {
  /** Bytes currently reserved by this hold. */
  readonly bytes: number;
  /** Grows the hold to at least `total` bytes; throws E_OVERLOADED (taking nothing) when that would pass the budget. */
  cover(total: number): void;
  /** Gives every byte back. Idempotent: safe in `finally` blocks that may run after an earlier release. */
  release(): void;
}

export interface ByteBudgetStats {
  limitBytes: number;
  usedBytes: number;
  /** Misses and writes refused for lack of budget since start. */
  refused: number;
}

export class ByteBudget {
  private used = 0;
  private refusedCount = 0;
  private released = 0;

  /** `limitBytes` of 0 or less disables the budget (every reservation succeeds; still counted). */
  constructor(readonly limitBytes: number) {}

  get usedBytes(): number {
    return this.used;
  }

  /** Every byte ever given back: grows only while misses run (src/limits/idle-collect.ts watches it). */
  get releasedBytes(): number {
    return this.released;
  }

  /** A hold for a new miss; refused at once when the budget is already spent (the miss does no work at all). */
  open(): ByteHold {
    if (this.limited && this.used >= this.limitBytes) throw this.overloaded();
    return this.hold();
  }

  /** Takes `bytes` if they fit (write-behind: a write that does not fit is dropped, never waited for). */
  tryTake(bytes: number): boolean {
    if (!this.fits(bytes)) {
      this.refusedCount += 1;
      return false;
    }
    this.used += bytes;
    return true;
  }

  /** Returns bytes taken with `tryTake`. */
  give(bytes: number): void {
    this.used = Math.max(0, this.used - bytes);
    this.released += bytes;
  }

  stats(): ByteBudgetStats {
    return { limitBytes: this.limitBytes, usedBytes: this.used, refused: this.refusedCount };
  }

  private get limited(): boolean {
    return this.limitBytes > 0;
  }

  private fits(bytes: number): boolean {
    return !this.limited || this.used + bytes <= this.limitBytes;
  }

  private overloaded(): RelayError {
    this.refusedCount += 1;
    return new RelayError('E_OVERLOADED',
      `Too many source bytes in flight (IMGRELAY_MAX_INFLIGHT_MB = ${Math.round(this.limitBytes / 1048576)} MiB)`,
      { retryAfter: OVERLOADED_RETRY_AFTER_S });
  }

  private hold(): ByteHold {
    let held = 0;
    let released = false;
    return {
      get bytes() { return held; },
      cover: (total) => {
        if (released || total <= held) return;
        if (!this.fits(total - held)) throw this.overloaded();
        this.used += total - held;
        held = total;
      },
      release: () => {
        if (released) return;
        released = true;
        this.give(held);
        held = 0;
      },
    };
  }
}
