/** The digest cache of keys.ts: bounded in bytes (long URLs cannot fill an isolate), and still exact. */
import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { DIGEST_CACHE_MAX_BYTES, digestCacheStats, sha256Hex } from './keys.js';

const nodeSha256 = (text: string) => createHash('sha256').update(text).digest('hex');

describe('sha256Hex digest cache', () => {
  it('long URLs evict the least recently used: the cache stays within its byte bound while every digest is right', async () => {
    const longPath = 'a'.repeat(60 * 1024); // a 60 KiB URL (IMGRELAY_MAX_URL_BYTES allows long ones)
    const urls = Array.from({ length: 200 }, (_, i) => `https://img.example.com/${i}/${longPath}`);
    for (const url of urls) expect(await sha256Hex(url)).toBe(nodeSha256(url));
    // 200 × 120 KiB of keys (UTF-16) = ~23 MiB offered; the cache keeps ~4 MiB of them.
    const { bytes, entries } = digestCacheStats();
    expect(bytes).toBeLessThanOrEqual(DIGEST_CACHE_MAX_BYTES);
    expect(entries).toBeLessThan(urls.length);
    expect(entries).toBeGreaterThan(0);
    // The most recent ones are still served from the cache (the same promise), the oldest were evicted.
    expect(sha256Hex(urls.at(-1)!)).toBe(sha256Hex(urls.at(-1)!));
    expect(await sha256Hex(urls[0])).toBe(nodeSha256(urls[0]));
  });

});
