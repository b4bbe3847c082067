/**
 * Transforms at the edge through the Images binding, in workerd with miniflare's local Images binding (it runs
 * sharp in the Node process: the same calls as Cloudflare's, a smaller option set; docs/edge.md). The binding is
 * bound as LAB_IMAGES for the whole suite and handed to the edge as `IMAGES` only here, so the forwarding tests
 * (forward.test.ts) keep an edge without it.
 */
import { env } from 'cloudflare:test';
import { describe, expect, it } from 'vitest';
import type { ImagesBindingLike } from '../../src/edge-images.js';
import { TRANSFORMS_NEED_ORIGIN } from '../../src/transform/passthrough.js';
import { freshEdge, IMAGES, NODE_ORIGIN, originHits, problemOf, sha256, unique, viaEdge } from './helpers.js';

const BINDING = env.LAB_IMAGES as ImagesBindingLike;
const AT_EDGE = { IMAGES: BINDING };
const AT_EDGE_WITH_ORIGIN = { IMAGES: BINDING, IMGRELAY_ORIGIN_URL: NODE_ORIGIN };
/** An origin the lab has no route to: anything forwarded to it fails. */
const DEAD_ORIGIN = { IMAGES: BINDING, IMGRELAY_ORIGIN_URL: 'http://dead.imgrelay.test' };
const AVIF_ACCEPT = 'image/avif,image/webp,image/apng,image/*,*/*;q=0.8';
const WEBP_ACCEPT = 'image/webp,image/*,*/*;q=0.8';

const autoPath = (source: string, extra = '') => `/?url=${encodeURIComponent(IMAGES + source)}&w=120&output=auto${extra}`;

/** Width and format of an output, as the binding itself reads them. */
async function infoOf(response: Response): Promise<{ format: string; width?: number }> {
  return BINDING.info(new Blob([await response.arrayBuffer()]).stream());
}

/**
 * An AVIF's width from its `ispe` box (the local binding's info() calls AVIF "heif" and refuses it): the brand must
 * be avif, and `ispe` holds version/flags then width and height, big-endian.
 */
function avifWidth(bytes: Uint8Array): number | undefined {
  const text = new TextDecoder('latin1').decode(bytes.subarray(0, 512));
  if (text.slice(4, 12) !== 'ftypavif') return undefined;
  const at = text.indexOf('ispe');
  return at < 0 ? undefined : new DataView(bytes.buffer, bytes.byteOffset + at + 8, 4).getUint32(0);
}

describe('transforms through the Images binding, no origin', () => {
  it('resizes and negotiates the format from Accept, keyed per format bucket', async () => {
    const source = `/photo.jpg?case=${unique('edge-auto')}`;
    const edge = freshEdge(AT_EDGE);
    const avif = await viaEdge(edge, autoPath(source), { headers: { accept: AVIF_ACCEPT } });
    expect(avif.status).toBe(200);
    expect(avif.headers.get('content-type')).toBe('image/avif');
    expect(avif.headers.get('vary')).toBe('Accept');
    expect(avif.headers.get('x-cache')).toBe('MISS');
    expect(avifWidth(new Uint8Array(await avif.arrayBuffer()))).toBe(120);

    const webp = await viaEdge(edge, autoPath(source), { headers: { accept: WEBP_ACCEPT } });
    expect(webp.headers.get('content-type')).toBe('image/webp');
    expect(await infoOf(webp)).toMatchObject({ format: 'image/webp', width: 120 });
    const plain = await viaEdge(edge, autoPath(source));
    expect(plain.headers.get('content-type')).toBe('image/jpeg'); // the source's family
    expect(await infoOf(plain)).toMatchObject({ format: 'image/jpeg', width: 120 });
    // Three variants, one source fetch (variants are built from the cached source).
    expect(await originHits(source)).toBe(1);
  });

  it('serves the second request from the cache: memory in the isolate, the Cache API in a new one', async () => {
    const source = `/photo.jpg?case=${unique('edge-cached')}`;
    const path = `/cdn-cgi/image/width=90,format=webp/${IMAGES}${source}`;
    const edge = freshEdge(AT_EDGE);
    const first = await viaEdge(edge, path);
    expect(first.headers.get('x-cache')).toBe('MISS');
    const body = await sha256(await first.arrayBuffer());
    const again = await viaEdge(edge, path);
    expect(again.headers.get('x-cache')).toBe('HIT-MEMORY');
    expect(await sha256(await again.arrayBuffer())).toBe(body);
    const isolate = await viaEdge(freshEdge(AT_EDGE), path);
    expect(isolate.headers.get('x-cache')).toBe('HIT-STORE');
    expect(await sha256(await isolate.arrayBuffer())).toBe(body);
    expect(await originHits(source)).toBe(1);
  });

  it('applies the allowed variants first: w=100 with IMGRELAY_ALLOWED_WIDTHS=160,320 is the 160 entry', async () => {
    const source = `/photo.jpg?case=${unique('edge-variants')}`;
    const edge = freshEdge({ ...AT_EDGE, IMGRELAY_ALLOWED_WIDTHS: '160,320' });
    const path = (w: number) => `/?url=${encodeURIComponent(IMAGES + source)}&w=${w}&output=webp`;
    const rounded = await viaEdge(edge, path(100));
    expect(await infoOf(rounded)).toMatchObject({ format: 'image/webp', width: 160 });
    const same = await viaEdge(edge, path(160));
    expect(same.headers.get('x-cache')).toBe('HIT-MEMORY'); // one variant for both
  });

  it('applies the same limits: over IMGRELAY_MAX_SOURCE_PIXELS (from the binding\'s info) is a 422', async () => {
    const source = `/photo.jpg?case=${unique('edge-pixels')}`; // 2560x1600
    const response = await viaEdge(freshEdge({ ...AT_EDGE, IMGRELAY_MAX_SOURCE_PIXELS: '1000000' }), autoPath(source));
    expect(response.status).toBe(422);
    expect(await problemOf(response)).toMatchObject({ code: 'E_IMAGE_INVALID' });
  });

  it('an option the binding cannot do is a 501 naming it, before the source is fetched', async () => {
    const source = `/photo.jpg?case=${unique('edge-501')}`;
    for (const [path, option] of [[autoPath(source, '&il=true'), 'il'], [autoPath(source, '&blur=3'), 'blur'],
      [`/cdn-cgi/image/width=80,metadata=keep/${IMAGES}${source}`, 'metadata']]) {
      const response = await viaEdge(freshEdge(AT_EDGE), path);
      expect(response.status, path).toBe(501);
      expect(response.headers.get('cache-control')).toBe('no-store');
      const problem = await problemOf(response);
      expect(problem.code).toBe('E_NOT_IMPLEMENTED');
      expect(problem.detail).toContain(`\`${option}\``);
      expect(problem.detail).not.toBe(TRANSFORMS_NEED_ORIGIN);
    }
    expect(await originHits(source)).toBe(0);
  });

  it('a source the binding cannot read (SVG) is a clear 501, never a 500', async () => {
    const response = await viaEdge(freshEdge(AT_EDGE), autoPath(`/logo.svg?case=${unique('edge-svg')}`));
    expect(response.status).toBe(501);
    expect(await problemOf(response)).toMatchObject({ code: 'E_NOT_IMPLEMENTED' });
  });
});

describe('transforms through the Images binding, with an origin', () => {
  it('forwards to the origin only what the binding cannot do', async () => {
    const source = `/forwarded.jpg?case=${unique('edge-split')}`;
    const edge = freshEdge(AT_EDGE_WITH_ORIGIN);
    const interlaced = autoPath(source, '&il=true');
    const forwarded = await viaEdge(edge, interlaced, { headers: { accept: WEBP_ACCEPT } });
    expect(forwarded.status).toBe(200);
    const direct = await fetch(NODE_ORIGIN + interlaced, { headers: { accept: WEBP_ACCEPT } });
    expect(forwarded.headers.get('etag')).toBe(direct.headers.get('etag')); // the origin built it
    expect(await sha256(await forwarded.arrayBuffer())).toBe(await sha256(await direct.arrayBuffer()));

    // Plain resizing runs at the edge, even with the origin down.
    const atEdge = await viaEdge(freshEdge(DEAD_ORIGIN), autoPath(source), { headers: { accept: WEBP_ACCEPT } });
    expect(atEdge.status).toBe(200);
    expect(await infoOf(atEdge)).toMatchObject({ format: 'image/webp', width: 120 });
  });
});
