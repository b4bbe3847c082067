/**
 * Transform requests at the edge, in workerd: without IMGRELAY_ORIGIN_URL a clear 501; with it, forwarded to the
 * real Node imgrelay (sharp) in the lab, served with the Node service's headers and cached at the edge under a key
 * that includes the output-format bucket.
 */
import { describe, expect, it } from 'vitest';
import { TRANSFORMS_NEED_ORIGIN } from '../../src/transform/passthrough.js';
import { LAB_PRESETS } from './lab-hosts.js';
import { freshEdge, IMAGES, NODE_ORIGIN, originalBytes, originHits, problemOf, sha256, unique, viaEdge, viaWorker } from './helpers.js';

const WITH_ORIGIN = { IMGRELAY_ORIGIN_URL: NODE_ORIGIN };
/** An origin the lab has no route to: any request to it fails (502 from the lab's router). */
const DEAD_ORIGIN = { IMGRELAY_ORIGIN_URL: 'http://dead.imgrelay.test' };
const AVIF_ACCEPT = 'image/avif,image/webp,image/apng,image/*,*/*;q=0.8';
const WEBP_ACCEPT = 'image/webp,image/*,*/*;q=0.8';

const transformPath = (source: string) => `/?url=${encodeURIComponent(IMAGES + source)}&w=120&output=auto`;
const magic = async (response: Response) => new Uint8Array(await response.arrayBuffer());

describe('transforms without an origin', () => {
  it('answers 501 E_NOT_IMPLEMENTED, in every URL form, without fetching the source', async () => {
    const source = `/photo.jpg?case=${unique('no-origin')}`;
    for (const path of [transformPath(source), `/cdn-cgi/image/width=120/${IMAGES}${source}`]) {
      const response = await viaWorker(path);
      expect(response.status, path).toBe(501);
      expect(response.headers.get('cache-control')).toBe('no-store');
      expect(await problemOf(response)).toMatchObject({ code: 'E_NOT_IMPLEMENTED', detail: TRANSFORMS_NEED_ORIGIN });
    }
    expect(await originHits(source)).toBe(0);
  });

  it('still refuses a forbidden source with 403 first', async () => {
    const response = await viaWorker('/?url=http://169.254.169.254/a.jpg&w=100');
    expect(response.status).toBe(403);
  });

  it('ignores IMGRELAY_LEGACY_OPTIONS (they need the origin): old articles keep getting the original', async () => {
    const response = await viaWorker(`/?${IMAGES}/202107/abc_1024.jpg`, { IMGRELAY_LEGACY_OPTIONS: 'w=300' });
    expect(response.status).toBe(200);
    expect(await sha256(await response.arrayBuffer())).toBe(await sha256(await originalBytes('/202107/abc_1024.jpg')));
  });
});

describe('transforms forwarded to the Node origin', () => {
  it('serves what the origin built, with the Node service\'s headers, and keys the edge cache by format bucket', async () => {
    const source = `/forwarded.jpg?case=${unique('forward')}`;
    const edge = freshEdge(WITH_ORIGIN);
    const avif = await viaEdge(edge, transformPath(source), { headers: { accept: AVIF_ACCEPT } });
    expect(avif.status).toBe(200);
    expect(avif.headers.get('content-type')).toBe('image/avif');
    expect(avif.headers.get('vary')).toBe('Accept');
    expect(avif.headers.get('x-cache')).toBe('MISS');
    const avifBody = await magic(avif);
    expect(new TextDecoder().decode(avifBody.subarray(4, 12))).toBe('ftypavif');

    // The same request to the origin directly: same bytes, same validators and caching headers.
    const direct = await fetch(NODE_ORIGIN + transformPath(source), { headers: { accept: AVIF_ACCEPT } });
    for (const name of ['etag', 'cache-control', 'surrogate-key', 'cache-tag', 'vary', 'content-type', 'content-length',
      'content-security-policy', 'access-control-allow-origin', 'cross-origin-resource-policy']) {
      expect(avif.headers.get(name), name).toBe(direct.headers.get(name));
    }
    expect(await sha256(await direct.arrayBuffer())).toBe(await sha256(avifBody));

    const webp = await viaEdge(edge, transformPath(source), { headers: { accept: WEBP_ACCEPT } });
    expect(webp.headers.get('content-type')).toBe('image/webp');
    expect(webp.headers.get('x-cache')).toBe('MISS');
    const again = await viaEdge(edge, transformPath(source), { headers: { accept: AVIF_ACCEPT } });
    expect(again.headers.get('x-cache')).toBe('HIT-MEMORY');
    expect(again.headers.get('content-type')).toBe('image/avif');
  });

  it('caches the origin\'s answer in the Cache API: a new isolate serves it with the origin unreachable', async () => {
    const source = `/forwarded.jpg?case=${unique('forward-store')}`;
    await viaEdge(freshEdge(WITH_ORIGIN), transformPath(source), { headers: { accept: WEBP_ACCEPT } });
    const offline = freshEdge(DEAD_ORIGIN, { cache: undefined });
    const hit = await viaEdge(offline, transformPath(source), { headers: { accept: WEBP_ACCEPT } });
    expect(hit.status).toBe(200);
    expect(hit.headers.get('x-cache')).toBe('HIT-STORE');
    expect(hit.headers.get('content-type')).toBe('image/webp');
    // Another bucket is another key: not in the Cache API, and the origin cannot be asked.
    const other = await viaEdge(offline, transformPath(source), { headers: { accept: AVIF_ACCEPT } });
    expect(other.status).toBe(502);
    expect(await originHits(source)).toBe(1);
  });

  it('answers 304 to a matching If-None-Match on a forwarded variant', async () => {
    const path = `/cdn-cgi/image/width=80,format=webp/${IMAGES}/forwarded.jpg?case=${unique('forward-304')}`;
    const edge = freshEdge(WITH_ORIGIN);
    const first = await viaEdge(edge, path);
    expect(first.headers.get('content-type')).toBe('image/webp');
    expect(first.headers.get('vary')).toBeNull();
    const conditional = await viaEdge(edge, path, { headers: { 'if-none-match': first.headers.get('etag') ?? '' } });
    expect(conditional.status).toBe(304);
  });

  it('keeps the origin\'s error status and code', async () => {
    const response = await viaEdge(freshEdge(WITH_ORIGIN), transformPath(`/gone.jpg?case=${unique('gone')}`));
    expect(response.status).toBe(404);
    expect(response.headers.get('cache-control')).toBe('public, max-age=60');
    expect((await problemOf(response)).code).toBe('E_SOURCE_NOT_FOUND');
  });

  it('relays the original of a legacy URL with legacy options when the origin is down', async () => {
    const response = await viaEdge(freshEdge({ ...DEAD_ORIGIN, IMGRELAY_LEGACY_OPTIONS: 'w=300' }),
      `/?${IMAGES}/202107/abc_1024.jpg`);
    expect(response.status).toBe(200);
    expect(await sha256(await response.arrayBuffer())).toBe(await sha256(await originalBytes('/202107/abc_1024.jpg')));
  });

  it('answers a transform with a dead origin with 502 E_UPSTREAM', async () => {
    const response = await viaEdge(freshEdge(DEAD_ORIGIN), transformPath(`/photo.jpg?case=${unique('dead')}`));
    expect(response.status).toBe(502);
    expect((await problemOf(response)).code).toBe('E_UPSTREAM');
  });

  it('keeps an origin STALE answer expired: the next request is STALE again (revalidating), never a HIT', async () => {
    const source = `/forwarded.jpg?case=${unique('origin-stale')}`;
    const edge = freshEdge({ IMGRELAY_ORIGIN_URL: `${IMAGES}/origin-stale` });
    const first = await viaEdge(edge, transformPath(source), { headers: { accept: WEBP_ACCEPT } });
    expect(first.status).toBe(200);
    const again = await viaEdge(edge, transformPath(source), { headers: { accept: WEBP_ACCEPT } });
    expect(again.headers.get('x-cache')).toBe('STALE');
    expect(maxAgeOf(again)).toBeLessThanOrEqual(60);
  });

  it('never makes an origin answer fresher than it said: 30 s is not raised to IMGRELAY_MIN_TTL_S', async () => {
    const source = `/forwarded.jpg?case=${unique('origin-30s')}`;
    const edge = freshEdge({ IMGRELAY_ORIGIN_URL: `${IMAGES}/origin-30s`, IMGRELAY_MIN_TTL_S: '3600' });
    await viaEdge(edge, transformPath(source), { headers: { accept: WEBP_ACCEPT } });
    const hit = await viaEdge(edge, transformPath(source), { headers: { accept: WEBP_ACCEPT } });
    expect(hit.headers.get('x-cache')).toBe('HIT-MEMORY');
    expect(maxAgeOf(hit)).toBeLessThanOrEqual(30);
  });

  it('serves an expired variant STALE only within IMGRELAY_STALE_IF_ERROR_S: past it, the origin\'s error', async () => {
    const source = `/forwarded.jpg?case=${unique('stale-bound')}`;
    // MIN_TTL_S 0: the origin's 1 s stands (this is about the stale bound, not the clamp).
    const fresh = freshEdge({ IMGRELAY_ORIGIN_URL: `${IMAGES}/origin-1s`, IMGRELAY_MIN_TTL_S: '0' });
    await viaEdge(fresh, transformPath(source), { headers: { accept: WEBP_ACCEPT } });
    await new Promise((resolve) => setTimeout(resolve, 1100));
    // New isolates (empty memory) with the origin down: the expired entry comes from the Cache API, which keeps it.
    const offline = (staleIfErrorS: string) => freshEdge({ ...DEAD_ORIGIN, IMGRELAY_STALE_IF_ERROR_S: staleIfErrorS });
    const within = await viaEdge(offline('3600'), transformPath(source), { headers: { accept: WEBP_ACCEPT } });
    expect(within.status).toBe(200);
    expect(within.headers.get('x-cache')).toBe('STALE');
    const past = await viaEdge(offline('0'), transformPath(source), { headers: { accept: WEBP_ACCEPT } });
    expect(past.status).toBe(502);
    expect((await problemOf(past)).code).toBe('E_UPSTREAM');
  });
});

function maxAgeOf(response: Response): number {
  const match = /(?:^|,)\s*max-age=(\d+)/.exec(response.headers.get('cache-control') ?? '');
  return match ? Number(match[1]) : Number.POSITIVE_INFINITY;
}

describe('presets at the edge (the same IMGRELAY_PRESETS as the origin)', () => {
  it('a preset in either form is the edge entry of its options: one origin answer for all three spellings', async () => {
    const source = `/forwarded.jpg?case=${unique('preset')}`;
    const edge = freshEdge({ ...WITH_ORIGIN, IMGRELAY_PRESETS: LAB_PRESETS });
    const paths = [`/?url=${encodeURIComponent(IMAGES + source)}&p=edgethumb`,
      `/cdn-cgi/image/preset=edgethumb/${IMAGES}${source}`, transformPath(source)];
    const answers = [];
    for (const path of paths) {
      const response = await viaEdge(edge, path, { headers: { accept: WEBP_ACCEPT } });
      answers.push([response.status, response.headers.get('x-cache'), response.headers.get('content-type')]);
      await response.arrayBuffer();
    }
    expect(answers).toEqual([[200, 'MISS', 'image/webp'], [200, 'HIT-MEMORY', 'image/webp'], [200, 'HIT-MEMORY', 'image/webp']]);
    expect(await originHits(source)).toBe(1);
  });

  it('an unknown preset is a 400 naming it, answered at the edge without the source', async () => {
    const source = `/forwarded.jpg?case=${unique('preset-unknown')}`;
    const response = await viaEdge(freshEdge({ ...WITH_ORIGIN, IMGRELAY_PRESETS: LAB_PRESETS }),
      `/?url=${encodeURIComponent(IMAGES + source)}&p=nope`);
    expect(response.status).toBe(400);
    expect(await problemOf(response)).toMatchObject({ code: 'E_BAD_REQUEST' });
    expect(await originHits(source)).toBe(0);
  });

  it('presets-only with legacy options that are no preset is a configuration error, as on Node', () => {
    const vars = { ...WITH_ORIGIN, IMGRELAY_PRESETS: LAB_PRESETS, IMGRELAY_PRESETS_ONLY: 'true' };
    expect(() => freshEdge({ ...vars, IMGRELAY_LEGACY_OPTIONS: 'w=300' })).toThrow(/IMGRELAY_LEGACY_OPTIONS="w=300": with IMGRELAY_PRESETS_ONLY/);
    expect(() => freshEdge({ ...vars, IMGRELAY_LEGACY_OPTIONS: 'p=edgethumb' })).not.toThrow();
  });

  it('presets-only at the edge: ad-hoc options are 400 before any forward, even ones that round to a cached preset', async () => {
    const source = `/forwarded.jpg?case=${unique('presets-only')}`;
    const edge = freshEdge({ ...WITH_ORIGIN, IMGRELAY_PRESETS: LAB_PRESETS, IMGRELAY_PRESETS_ONLY: 'true',
      IMGRELAY_ALLOWED_WIDTHS: '120' });
    const preset = await viaEdge(edge, `/?url=${encodeURIComponent(IMAGES + source)}&p=edgethumb`, { headers: { accept: WEBP_ACCEPT } });
    expect(preset.status).toBe(200);
    await preset.arrayBuffer();
    // w=100 rounds to the preset's 120 and would be its edge entry: refused like the origin refuses it.
    for (const path of [`/?url=${encodeURIComponent(IMAGES + source)}&w=100&output=auto`, `/cdn-cgi/image/width=300/${IMAGES}${source}`]) {
      const response = await viaEdge(edge, path, { headers: { accept: WEBP_ACCEPT } });
      expect(response.status, path).toBe(400);
      expect(await problemOf(response), path).toMatchObject({ code: 'E_BAD_REQUEST' });
    }
    expect(await originHits(source)).toBe(1);
  });
});
