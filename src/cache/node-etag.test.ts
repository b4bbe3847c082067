import { readFileSync } from 'node:fs';
import { expect, it } from 'vitest';
import { etagOf, sha256Hex } from './keys.js';
import { nodeEtag, nodeSha256Hex } from './node-etag.js';

it('gives the same ETag as the portable Web Crypto version, so Node and the edge agree', async () => {
  const body = new Uint8Array(readFileSync(new URL('../../test/fixtures/photo-wood.jpg', import.meta.url)));
  expect(nodeEtag(body)).toBe(await etagOf(body));
  expect(nodeEtag(body.subarray(1))).not.toBe(nodeEtag(body));
});

it('hashes store keys to the same value as the portable version, so a bucket is shared by Node and the edge', async () => {
  for (const text of ['http://origin.test/a.jpg', 'w=800|webp|v1', 'https://例え.jp/画像.png?x=ü']) {
    expect(nodeSha256Hex(text)).toBe(await sha256Hex(text));
  }
  expect(nodeSha256Hex('a')).not.toBe(nodeSha256Hex('b'));
});
