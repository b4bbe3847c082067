import { describe, expect, it } from 'vitest';
import { RateLimiterMemory } from 'rate-limiter-flexible';
import { RelayError } from '../errors.js';
import { v8FullCollection } from '../limits/v8-collect.js';
import { MissLimiter } from './miss-limit.js';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const refusal = (promise: Promise<void>) => promise.then(() => undefined, (error: unknown) => error as RelayError);
const clientId = (i: number) => `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`;

describe('MissLimiter', () => {
  it('lets a client spend its burst, then refuses with 429 E_RATE_LIMITED and Retry-After in whole seconds', async () => {
    const limiter = new MissLimiter({ rate: { count: 60, periodS: 60 }, burst: 3 });
    for (let i = 0; i < 3; i++) await limiter.gate('192.0.2.1');
    const error = await refusal(limiter.gate('192.0.2.1'));
    expect(error).toBeInstanceOf(RelayError);
    expect(error?.code).toBe('E_RATE_LIMITED');
    expect(error?.status).toBe(429);
    // 3 tokens at 1/s: the window is 3 s, so the wait is 1 to 3 whole seconds.
    expect(error?.retryAfter).toBeGreaterThanOrEqual(1);
    expect(error?.retryAfter).toBeLessThanOrEqual(3);
  });

  it('one client over its limit does not limit another', async () => {
    const limiter = new MissLimiter({ rate: { count: 1, periodS: 3600 }, burst: 1 });
    await limiter.gate('192.0.2.1');
    expect((await refusal(limiter.gate('192.0.2.1')))?.code).toBe('E_RATE_LIMITED');
    expect(await refusal(limiter.gate('192.0.2.2'))).toBeUndefined();
  });

  it('refills after the window (2/s with a burst of 2: a fresh burst a second later)', async () => {
    const limiter = new MissLimiter({ rate: { count: 2, periodS: 1 }, burst: 2 });
    await limiter.gate('c');
    await limiter.gate('c');
    const refused = await refusal(limiter.gate('c'));
    expect(refused?.retryAfter).toBe(1); // what is left of the 1 s window, rounded up to a whole second
    await sleep(1100);
    expect(await refusal(limiter.gate('c'))).toBeUndefined();
    expect(await refusal(limiter.gate('c'))).toBeUndefined();
  });

  it('refusals do not extend the window: a client hammering while refused still refills on time', async () => {
    const limiter = new MissLimiter({ rate: { count: 1, periodS: 1 }, burst: 1 });
    await limiter.gate('c');
    for (let i = 0; i < 3; i++) {
      expect((await refusal(limiter.gate('c')))?.code).toBe('E_RATE_LIMITED');
      await sleep(100);
    }
    await sleep(900); // 1.2 s after the window opened: it ended on time despite the refusals during it
    expect(await refusal(limiter.gate('c'))).toBeUndefined();
  });

  it('a request with no client address is never limited (there is nothing to key on)', async () => {
    const limiter = new MissLimiter({ rate: { count: 1, periodS: 3600 }, burst: 1 });
    for (let i = 0; i < 5; i++) await limiter.gate(undefined);
    expect(limiter.trackedClients).toBe(0);
  });

  it('100k distinct clients keep the limiter bounded: at most maxClients buckets, heap growth bounded', async () => {
    const collect = v8FullCollection();
    // The library alone keeps a record and a timer per key until its window ends: 100k clients, 100k buckets.
    const bare = new RateLimiterMemory({ points: 60, duration: 60, keyPrefix: '' });
    for (let i = 0; i < 100_000; i++) await bare.consume(clientId(i));
    expect(bare.dump().storage.length).toBe(100_000);
    for (let i = 0; i < 100_000; i++) await bare.delete(clientId(i));

    collect();
    const before = process.memoryUsage().heapUsed;
    const limiter = new MissLimiter({ rate: { count: 60, periodS: 60 }, burst: 60, maxClients: 10_000 });
    for (let i = 0; i < 100_000; i++) await limiter.gate(clientId(i));
    collect();
    const grown = process.memoryUsage().heapUsed - before;
    expect(limiter.trackedClients).toBe(10_000);
    expect(limiter.buckets).toBe(10_000);
    // ~450 B per bucket here: 10k ≈ 4.5 MB; the unbounded 100k would be ≈ 45 MB.
    expect(grown).toBeLessThan(20 * 1024 * 1024);
  }, 60_000);

  it('a client dropped from the LRU starts again with a full bucket (the cost of the bound, documented)', async () => {
    const limiter = new MissLimiter({ rate: { count: 1, periodS: 3600 }, burst: 1, maxClients: 2 });
    await limiter.gate('a');
    expect((await refusal(limiter.gate('a')))?.code).toBe('E_RATE_LIMITED');
    await limiter.gate('b');
    await limiter.gate('c'); // 'a' is the least recently seen: its bucket goes
    expect(limiter.buckets).toBe(2);
    expect(await refusal(limiter.gate('a'))).toBeUndefined();
  });
});
