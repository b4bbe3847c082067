/**
 * Hotlink placeholders at the edge, in workerd: exact entries (length + SHA-256, Web Crypto) are checked there too;
 * a body that matches is 502 E_UPSTREAM_PLACEHOLDER, no-store, and the next request asks the origin again.
 * (Perceptual entries need a decoder: only the Node origin checks them; src/fetch/placeholder.ts.)
 */
import { describe, expect, it } from 'vitest';
import { IMAGES, originalBytes, originHits, problemOf, sha256, unique, viaWorker } from './helpers.js';
import { IMAGE_HOST } from './lab-hosts.js';

describe('placeholders at the edge', () => {
  it('a body matching an exact placeholder entry is 502 E_UPSTREAM_PLACEHOLDER, never cached', async () => {
    const standIn = await originalBytes('/photo.jpg');
    const rules = JSON.stringify([{ host: IMAGE_HOST, headers: { referer: null },
      placeholders: [{ bytes: standIn.byteLength, sha256: await sha256(standIn) }] }]);
    const path = `/photo.jpg?case=${unique('placeholder')}`;
    for (let attempt = 1; attempt <= 2; attempt++) {
      const response = await viaWorker(`/?${IMAGES}${path}`, { IMGRELAY_HEADER_RULES: rules });
      expect(response.status).toBe(502);
      expect(response.headers.get('cache-control')).toBe('no-store');
      expect((await problemOf(response)).code).toBe('E_UPSTREAM_PLACEHOLDER');
      expect(await originHits(path)).toBe(attempt); // asked again: nothing was kept
    }
    // Without the rule the same bytes are the image.
    const plain = await viaWorker(`/?${IMAGES}${path}`);
    expect(plain.status).toBe(200);
    expect(await sha256(await plain.arrayBuffer())).toBe(await sha256(standIn));
  });
});
