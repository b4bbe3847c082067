import { readFileSync } from 'node:fs';
import { expect, it } from 'vitest';
import { etagOf } from './keys.js';
import { nodeEtag } from './node-etag.js';

it('gives the same ETag as the portable Web Crypto version, so Node and the edge agree', async () => {
  const body = new Uint8Array(readFileSync(new URL('../../test/fixtures/photo-wood.jpg', import.meta.url)));
  expect(nodeEtag(body)).toBe(await etagOf(body));
  expect(nodeEtag(body.subarray(1))).not.toBe(nodeEtag(body));
});
