/**
 * The persistent tier through the real service: restart survival (fs), new widths without the origin, sources kept
 * in the store rather than in memory, two instances sharing one S3 bucket, and a failing or hanging S3 never failing
 * or delaying a response.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type TestOrigin, startOrigin } from './helpers/origin.js';
import { ZAKER, bootImgrelay, bytes, digest, zakerAt } from './helpers/imgrelay.js';
import { S3_CREDENTIALS, type TestS3, startHangingServer, startS3 } from './helpers/s3.js';
import type { RunningNode } from '../src/node.js';

const photo = readFileSync(new URL('./fixtures/photo-ladybird.jpg', import.meta.url));
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

let origin: TestOrigin;
beforeAll(async () => {
  origin = await startOrigin();
  for (const name of ['a', 'b', 'c', 'd', 'e', 'f', 'g', 'h']) origin.serve(`/${name}.jpg`, photo, 'image/jpeg');
  // The service's S3 client takes credentials from the AWS SDK's usual chain: here, the environment.
  process.env.AWS_ACCESS_KEY_ID = S3_CREDENTIALS.accessKeyId;
  process.env.AWS_SECRET_ACCESS_KEY = S3_CREDENTIALS.secretAccessKey;
});
afterAll(() => origin.close());

const relayUrl = (relay: RunningNode, name: string) => `${relay.url}/?http://${ZAKER}/${name}.jpg`;
const variantUrl = (relay: RunningNode, name: string, w: number) =>
  `${relay.url}/?url=${encodeURIComponent(`http://${ZAKER}/${name}.jpg`)}&w=${w}`;
const xcache = async (url: string) => {
  const response = await fetch(url);
  await response.arrayBuffer();
  expect(response.status).toBe(200);
  return response.headers.get('x-cache');
};

describe('fs store (the embedded default)', () => {
  let dir: string;
  beforeAll(async () => { dir = await mkdtemp(join(tmpdir(), 'imgrelay-tiers-')); });
  afterAll(() => rm(dir, { recursive: true, force: true }));

  it('survives a restart: a fresh process serves HIT-STORE with zero origin hits, and builds new widths from it', async () => {
    const env = { ...zakerAt(origin.port), IMGRELAY_STORE: 'fs', IMGRELAY_CACHE_DIR: dir };
    const first = await bootImgrelay(env);
    expect(await xcache(relayUrl(first, 'a'))).toBe('MISS');
    expect(await xcache(variantUrl(first, 'a', 200))).toBe('MISS');
    await first.close(); // drains the write-behind queue

    const hits = origin.hits('/a.jpg');
    const second = await bootImgrelay(env);
    try {
      const relayed = await fetch(relayUrl(second, 'a'));
      expect(relayed.headers.get('x-cache')).toBe('HIT-STORE');
      expect(digest(await bytes(relayed))).toBe(digest(photo));
      expect(await xcache(variantUrl(second, 'a', 200))).toBe('HIT-STORE');
      expect(await xcache(variantUrl(second, 'a', 120))).toBe('MISS');
      expect(origin.hits('/a.jpg')).toBe(hits);
    } finally {
      await second.close();
    }
  });
});

describe('what the memory tier holds', () => {
  let dir: string;
  beforeAll(async () => { dir = await mkdtemp(join(tmpdir(), 'imgrelay-tiers-input-')); });
  afterAll(() => rm(dir, { recursive: true, force: true }));

  it('keeps a variant\'s source out of memory when the store holds it, and never refetches it for a new width', async () => {
    const relay = await bootImgrelay({ ...zakerAt(origin.port), IMGRELAY_STORE: 'fs', IMGRELAY_CACHE_DIR: dir });
    try {
      expect(await xcache(variantUrl(relay, 'c', 200))).toBe('MISS');
      const hits = origin.hits('/c.jpg');
      // Only the ~10 KB variant is in memory, not the 350 KB source it was built from.
      expect(relay.memory.stats()).toMatchObject({ entries: 1 });
      expect(relay.memory.stats().bytes).toBeLessThan(photo.length);
      // A new width reads the source back from the store (or from the write on its way there), not the origin.
      expect(await xcache(variantUrl(relay, 'c', 120))).toBe('MISS');
      // Served as it is, the source is what clients get: then it is promoted to memory.
      expect(await xcache(relayUrl(relay, 'c'))).toBe('HIT-STORE');
      expect(await xcache(relayUrl(relay, 'c'))).toBe('HIT-MEMORY');
      expect(origin.hits('/c.jpg')).toBe(hits);
    } finally {
      await relay.close();
    }
  });

  it('keeps the source in memory when there is no store, so a new width still never refetches it', async () => {
    const relay = await bootImgrelay({ ...zakerAt(origin.port), IMGRELAY_STORE: 'none' });
    try {
      expect(await xcache(variantUrl(relay, 'd', 200))).toBe('MISS');
      const hits = origin.hits('/d.jpg');
      expect(await xcache(variantUrl(relay, 'd', 120))).toBe('MISS');
      expect(await xcache(relayUrl(relay, 'd'))).toBe('HIT-MEMORY');
      expect(origin.hits('/d.jpg')).toBe(hits);
    } finally {
      await relay.close();
    }
  });
});

describe('S3 store', () => {
  let s3: TestS3;
  const s3Env = () => ({
    ...zakerAt(origin.port), IMGRELAY_STORE: 's3', IMGRELAY_S3_BUCKET: s3.bucket, IMGRELAY_S3_ENDPOINT: s3.endpoint,
    IMGRELAY_S3_FORCE_PATH_STYLE: 'true', IMGRELAY_STORE_TIMEOUT_MS: '500',
  });
  beforeAll(async () => { s3 = await startS3({ allowMismatchedSignatures: true }); });
  afterAll(() => s3.close());

  it('lets a second instance serve what the first cached', async () => {
    const [a, b] = [await bootImgrelay(s3Env()), await bootImgrelay(s3Env())];
    try {
      expect(await xcache(variantUrl(a, 'b', 150))).toBe('MISS');
      const hits = origin.hits('/b.jpg');
      // Write-behind: wait (bounded) until A's source and variant have landed in the bucket.
      for (let i = 0; i < 100 && a.store!.writes.stats().written < 2; i++) await sleep(50);
      const state = await xcache(variantUrl(b, 'b', 150));
      expect(state).toBe('HIT-STORE');
      expect(origin.hits('/b.jpg')).toBe(hits);
    } finally {
      await Promise.all([a.close(), b.close()]);
    }
  });

  it('serves every request while S3 is down, opens the breaker, and resumes writes when it is back', async () => {
    const relay = await bootImgrelay(s3Env());
    try {
      await s3.stop();
      for (const name of ['c', 'd', 'e', 'f', 'g', 'c']) expect(await xcache(relayUrl(relay, name))).not.toBeNull();
      const guarded = relay.store!.guarded;
      expect(guarded.errors).toBeGreaterThan(0);
      expect(guarded.state()).toBe('open');

      await s3.restart();
      // After the cool-down a probe closes the breaker; new entries then land in the bucket again.
      let landed = false;
      for (let i = 0; i < 100 && !landed; i++) {
        await xcache(variantUrl(relay, 'h', 100 + i));
        await sleep(100);
        landed = guarded.state() === 'closed' && relay.store!.writes.stats().written > 0;
      }
      expect(landed).toBe(true);
    } finally {
      await relay.close();
    }
  });

  it('does not delay responses beyond the store deadline when S3 hangs', async () => {
    const hanging = await startHangingServer();
    const relay = await bootImgrelay({ ...s3Env(), IMGRELAY_S3_ENDPOINT: hanging.endpoint });
    try {
      const started = Date.now();
      const response = await fetch(relayUrl(relay, 'e'));
      expect(response.status).toBe(200);
      expect(digest(await bytes(response))).toBe(digest(photo));
      expect(Date.now() - started).toBeLessThan(500 + 3000); // store deadline + a generous margin
      expect(hanging.connections).toBeGreaterThan(0);
    } finally {
      await relay.close();
      await hanging.stop();
    }
  });
});
