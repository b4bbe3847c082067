import { describe, expect, it } from 'vitest';
import { parsePresets } from '../url/presets.js';
import { parseImageRequest, splitRequestUrl } from '../url/request.js';
import { UnsignableUrl, signImageUrl } from './sign-url.js';
import { createSigner } from './signature.js';

const signer = createSigner(['k'.repeat(40)]);
const SRC = 'https://img.example.com/a.jpg?v=2';

async function verifies(url: string): Promise<boolean> {
  const { pathname, rawQuery } = splitRequestUrl(url);
  const request = parseImageRequest(pathname, rawQuery)!;
  return signer.verify(request, request.options.signature ?? '');
}

describe('signImageUrl', () => {
  it('appends s= to the query form, keeping the rest as written, and replaces an old signature', async () => {
    const url = `https://relay.test/?w=800&url=${encodeURIComponent(SRC)}&s=old`;
    const signed = await signImageUrl(url, signer);
    expect(signed).toMatch(new RegExp(`^https://relay\\.test/\\?w=800&url=${encodeURIComponent(SRC).replace(/[.?]/g, '\\$&')}&s=[A-Za-z0-9_-]{43}$`));
    expect(await verifies(signed)).toBe(true);
    expect(await signImageUrl(signed, signer)).toBe(signed);
  });

  it('adds sig= to the path form options, the source and its own query untouched', async () => {
    const signed = await signImageUrl(`http://relay.test:8080/cdn-cgi/image/width=300,sig=old,f=webp/${SRC}`, signer);
    expect(signed).toMatch(/^http:\/\/relay\.test:8080\/cdn-cgi\/image\/width=300,f=webp,sig=[\w-]{43}\/https:\/\/img\.example\.com\/a\.jpg\?v=2$/);
    expect(await verifies(signed)).toBe(true);
  });

  it('refuses the legacy form, other routes, relative and invalid URLs with a reason', async () => {
    const reasons = await Promise.all([`https://relay.test/?${SRC}`, 'https://relay.test/healthz', '/?url=x',
      `https://relay.test/?url=${encodeURIComponent(SRC)}&w=0`].map((url) => signImageUrl(url, signer).catch((e: Error) => e)));
    expect(reasons.every((r) => r instanceof UnsignableUrl)).toBe(true);
    expect(reasons.map((r) => (r as Error).message)).toEqual([
      expect.stringContaining('legacy'), expect.stringContaining('not an imgrelay image URL'),
      expect.stringContaining('not an absolute'), expect.stringContaining('Invalid option "w"'),
    ]);
  });

  it('refuses a preset URL when it was not given the presets (it would print a signature the service refuses)', async () => {
    for (const url of [`https://relay.test/?url=${encodeURIComponent(SRC)}&p=thumb`, `https://relay.test/cdn-cgi/image/preset=thumb/${SRC}`]) {
      await expect(signImageUrl(url, signer), url).rejects.toThrow(/names a preset but IMGRELAY_PRESETS is not set/);
      const signed = await signImageUrl(url, signer, parsePresets('thumb:w=300'));
      const { pathname, rawQuery } = splitRequestUrl(signed);
      const request = parseImageRequest(pathname, rawQuery, undefined, parsePresets('thumb:w=300'))!;
      expect(await signer.verify(request, request.options.signature ?? ''), url).toBe(true);
    }
  });
});
