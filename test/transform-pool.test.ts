import { describe, expect, it } from 'vitest';
import { RelayError } from '../src/errors.js';
import { createPool } from '../src/transform/pool.js';

/** A job that holds its slot until released, so the test controls the backlog (no timing involved). */
function gate() {
  let open!: () => void;
  const opened = new Promise<void>((resolve) => { open = resolve; });
  return { open, opened };
}

describe('transform pool', () => {
  it('1 slot + queue of 2: a burst of 10 slow jobs gives 3 successes and 7 immediate 503s with Retry-After', async () => {
    const pool = createPool({ slots: 1, maxQueue: 2 });
    const release = gate();
    let started = 0;
    const job = async (i: number) => {
      started++;
      await release.opened;
      return i;
    };
    const results = Array.from({ length: 10 }, (_, i) => pool.run(() => job(i)));
    const rejected = await Promise.allSettled(results.slice(3));
    // The overflow is refused at once, while the first job still holds the slot.
    expect(pool.stats()).toMatchObject({ running: 1, queued: 2, rejected: 7 });
    release.open();
    const settled = await Promise.allSettled(results.slice(0, 3));

    expect(settled.map((s) => s.status === 'fulfilled' && s.value)).toEqual([0, 1, 2]);
    for (const outcome of rejected) {
      expect(outcome.status).toBe('rejected');
      const error = (outcome as PromiseRejectedResult).reason as RelayError;
      expect(error).toBeInstanceOf(RelayError);
      expect(error.code).toBe('E_OVERLOADED');
      expect(error.status).toBe(503);
      expect(error.retryAfter).toBeGreaterThanOrEqual(1);
      expect(error.retryAfter).toBeLessThanOrEqual(5);
    }
    expect(started).toBe(3);
    expect(pool.stats()).toMatchObject({ running: 0, queued: 0, completed: 3 });
  });

  it('never runs more than `slots` jobs at once', async () => {
    const pool = createPool({ slots: 2, maxQueue: 100 });
    let active = 0;
    let peak = 0;
    const job = async () => {
      active++;
      peak = Math.max(peak, active);
      await new Promise((resolve) => setImmediate(resolve));
      active--;
    };
    await Promise.all(Array.from({ length: 20 }, () => pool.run(job)));
    expect(peak).toBe(2);
  });

  it('drops a job whose caller aborted while it waited, and frees its queue place', async () => {
    const pool = createPool({ slots: 1, maxQueue: 1 });
    const release = gate();
    const ran: string[] = [];
    const first = pool.run(async () => { ran.push('first'); await release.opened; });
    const controller = new AbortController();
    const abandoned = pool.run(async () => { ran.push('abandoned'); }, { signal: controller.signal });
    controller.abort();
    await expect(abandoned).rejects.toMatchObject({ name: 'AbortError' });
    // Its place in the queue is free again: a new job is accepted rather than refused.
    const next = pool.run(async () => { ran.push('next'); });
    release.open();
    await Promise.all([first, next]);
    expect(ran).toEqual(['first', 'next']);
  });

  it('a job that throws frees its slot and reports its own error', async () => {
    const pool = createPool({ slots: 1, maxQueue: 0 });
    await expect(pool.run(async () => { throw new RelayError('E_IMAGE_INVALID', 'bad'); })).rejects.toMatchObject({ code: 'E_IMAGE_INVALID' });
    await expect(pool.run(async () => 'ok')).resolves.toBe('ok');
  });

  it('refuses an already aborted caller without running anything', async () => {
    const pool = createPool({ slots: 1, maxQueue: 1 });
    let ran = false;
    await expect(pool.run(async () => { ran = true; }, { signal: AbortSignal.abort() })).rejects.toBeDefined();
    expect(ran).toBe(false);
  });
});
