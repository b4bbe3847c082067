import { describe, expect, it, vi } from 'vitest';
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

  it('a job waiting past queueTimeoutMs leaves the queue with 503 + Retry-After, within its bound', async () => {
    const pool = createPool({ slots: 1, maxQueue: 10, queueTimeoutMs: 150 });
    const release = gate();
    let ranLate = false;
    const holder = pool.run(() => release.opened);
    const started = performance.now();
    const error = await pool.run(async () => { ranLate = true; }).then(() => undefined, (e: unknown) => e as RelayError);
    const waitedMs = performance.now() - started;
    expect(error).toMatchObject({ code: 'E_OVERLOADED', status: 503 });
    expect(error!.retryAfter).toBeGreaterThanOrEqual(1);
    expect(error!.detail).toMatch(/150 ms \(IMGRELAY_QUEUE_TIMEOUT_MS\)/);
    expect(waitedMs).toBeGreaterThanOrEqual(140);
    expect(waitedMs).toBeLessThan(2000);
    expect(pool.stats()).toMatchObject({ queued: 0, timedOut: 1 });
    release.open();
    await holder;
    expect(ranLate).toBe(false);
  });

  it('heavy jobs hold at most one slot on two: a light job starts while heavy ones wait', async () => {
    const pool = createPool({ slots: 2, maxQueue: 10 });
    const release = gate();
    const started: string[] = [];
    const job = (name: string) => async () => { started.push(name); await release.opened; };
    const heavy = [1, 2, 3].map((i) => pool.run(job(`heavy${i}`), { heavy: true }));
    const light = pool.run(job('light'));
    await Promise.resolve();
    expect(started).toEqual(['heavy1', 'light']);
    expect(pool.stats()).toMatchObject({ running: 2, heavyRunning: 1, queued: 2 });
    release.open();
    await Promise.all([...heavy, light]);
    expect(started).toHaveLength(4);
  });

  it('waiting is round-robin between clients: a flood from one client does not delay another', async () => {
    const pool = createPool({ slots: 1, maxQueue: 100 });
    const order: string[] = [];
    let releaseFirst!: () => void;
    const first = pool.run(() => new Promise<void>((resolve) => { releaseFirst = resolve; }), { client: 'flood' });
    const jobs = [
      ...Array.from({ length: 5 }, (_, i) => pool.run(async () => { order.push(`flood${i}`); }, { client: 'flood' })),
      pool.run(async () => { order.push('polite'); }, { client: 'polite' }),
    ];
    releaseFirst();
    await Promise.all([first, ...jobs]);
    // The polite client's single job runs right after the flood's next one, not after all five.
    expect(order.indexOf('polite')).toBeLessThanOrEqual(1);
  });

  it('a waiting light job goes before a heavy one that waited longer', async () => {
    const pool = createPool({ slots: 1, maxQueue: 10 });
    const release = gate();
    const order: string[] = [];
    const holder = pool.run(() => release.opened);
    const heavy = pool.run(async () => { order.push('heavy'); }, { heavy: true, client: 'a' });
    const light = pool.run(async () => { order.push('light'); }, { client: 'b' });
    release.open();
    await Promise.all([holder, heavy, light]);
    expect(order).toEqual(['light', 'heavy']);
  });

  it('on 2 slots a heavy job waits while a light one runs: heavy work fills idle time only', async () => {
    const pool = createPool({ slots: 2, maxQueue: 10 });
    const release = gate();
    const started: string[] = [];
    const light = pool.run(async () => { started.push('light'); await release.opened; });
    const heavy = pool.run(async () => { started.push('heavy'); }, { heavy: true });
    await Promise.resolve();
    expect(started).toEqual(['light']);
    expect(pool.stats()).toMatchObject({ running: 1, queued: 1 });
    release.open();
    await Promise.all([light, heavy]);
    expect(started).toEqual(['light', 'heavy']);
  });

  it('a heavy job starts only once the light lane has been quiet for heavyQuietMs', async () => {
    const pool = createPool({ slots: 2, maxQueue: 10, heavyQuietMs: 200 });
    await pool.run(async () => 'light');
    const enqueued = performance.now();
    let startedAfterMs = -1;
    const heavy = pool.run(async () => { startedAfterMs = performance.now() - enqueued; }, { heavy: true });
    await new Promise((resolve) => setImmediate(resolve));
    expect(startedAfterMs).toBe(-1);
    expect(pool.stats()).toMatchObject({ running: 0, queued: 1 });
    await heavy;
    expect(startedAfterMs).toBeGreaterThanOrEqual(150);
    expect(startedAfterMs).toBeLessThan(5000);
  });

  it('a heavy job whose quiet period ends between the check and the wake-up timer still starts (no lost wake-up)', async () => {
    // The clock is stepped by hand: the lost wake-up needs the quiet period to end in the instant between the pool's
    // "may a heavy job start?" look (not yet) and its timer arming (already over), which real time hits only rarely.
    let now = 1_000;
    const clock = vi.spyOn(performance, 'now').mockImplementation(() => now);
    try {
      const pool = createPool({ slots: 2, maxQueue: 10, heavyQuietMs: 200 });
      await pool.run(async () => 'light'); // light activity at 1000
      const reads = [1_199.9, 1_200.1]; // the look, then the timer's arming
      clock.mockImplementation(() => reads.shift() ?? (now = 1_300));
      const heavy = pool.run(async () => 'heavy', { heavy: true });
      const stuck = new Promise((resolve) => setTimeout(resolve, 1_000, 'never started'));
      expect(await Promise.race([heavy, stuck])).toBe('heavy');
    } finally {
      clock.mockRestore();
    }
  });
});
