/**
 * What the sharp pipeline refuses, and how: bombs before decoding (422, no memory growth), broken files (422),
 * formats it cannot decode (415), hostile SVG (rendered without any network access), overload (503).
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RelayError } from '../src/errors.js';
import type { ImageFormat, Transformer } from '../src/transform/types.js';
import { fixture, hostileSvg, inspect, testTransformer, transformWith } from './helpers/images.js';

let transformer: Transformer;
beforeAll(() => {
  transformer = testTransformer();
});

async function refusal(promise: Promise<unknown>): Promise<RelayError> {
  const error = await promise.then(() => undefined, (e: unknown) => e);
  expect(error).toBeInstanceOf(RelayError);
  return error as RelayError;
}

const transformAs = (source: Uint8Array, sourceFormat: ImageFormat) =>
  transformer.transform({ source, sourceFormat, spec: { width: 100 }, output: 'jpeg' });

describe('decompression bombs are refused from the header', () => {
  it.each(['bomb-64250x64250.jpg', 'bomb-crasher.png'])('%s → 422, without memory growth', async (name) => {
    global.gc?.();
    const before = process.memoryUsage().rss;
    for (let i = 0; i < 20; i++) {
      const error = await refusal(transformWith(transformer, fixture(name), 'w=100'));
      expect(error.code).toBe('E_IMAGE_INVALID');
      expect(error.status).toBe(422);
      expect(error.message).toMatch(/pixels, over the limit/);
    }
    expect(process.memoryUsage().rss - before).toBeLessThan(100 * 1024 * 1024);
  });

  it('an ordinary image over IMGRELAY_MAX_SOURCE_PIXELS → 422', async () => {
    const strict = testTransformer({ IMGRELAY_MAX_SOURCE_PIXELS: '1000000' });
    const error = await refusal(transformWith(strict, fixture('photo-wood.jpg'), 'w=100'));
    expect(error.code).toBe('E_IMAGE_INVALID');
  });

  it('an SVG declaring a gigantic canvas → 422', async () => {
    const svg = new TextEncoder().encode('<svg xmlns="http://www.w3.org/2000/svg" width="200000" height="200000"><rect width="10" height="10"/></svg>');
    expect((await refusal(transformWith(transformer, svg, 'w=100'))).code).toBe('E_IMAGE_INVALID');
  });
});

describe('broken images → 422', () => {
  it.each(['cmyk-truncated.jpg', 'corrupt.jpg'])('%s', async (name) => {
    const error = await refusal(transformWith(transformer, fixture(name), 'w=100'));
    expect(error.code).toBe('E_IMAGE_INVALID');
    expect(error.status).toBe(422);
  });

  it('a JPEG cut in half → 422 (failOn: error), not a half-grey picture', async () => {
    const photo = fixture('photo-wood.jpg');
    const error = await refusal(transformWith(transformer, photo.subarray(0, photo.length / 2), 'w=100'));
    expect(error.code).toBe('E_IMAGE_INVALID');
  });

  it.each([
    ['random bytes claimed as JPEG', new Uint8Array([0xff, 0xd8, 0xff, 0xe0, 1, 2, 3, 4, 5]), 'jpeg'],
    ['a PNG signature and nothing else', new Uint8Array([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), 'png'],
    ['an empty body', new Uint8Array(0), 'gif'],
    ['text claimed as SVG', new TextEncoder().encode('<svg><unclosed'), 'svg'],
  ] as const)('%s → a RelayError, never a raw sharp error', async (_label, bytes, format) => {
    const error = await refusal(transformAs(bytes, format));
    expect(['E_IMAGE_INVALID', 'E_UNSUPPORTED_MEDIA']).toContain(error.code);
  });
});

describe('formats sharp cannot decode → 415', () => {
  it.each(['unsupported.jxl', 'unsupported.bmp'])('%s', async (name) => {
    const error = await refusal(transformWith(transformer, fixture(name), 'w=100'));
    expect(error.code).toBe('E_UNSUPPORTED_MEDIA');
    expect(error.status).toBe(415);
  });

  it('even when the caller mislabels them, libvips saying "unsupported" is 415', async () => {
    expect((await refusal(transformAs(fixture('unsupported.bmp'), 'png'))).code).toBe('E_UNSUPPORTED_MEDIA');
    expect((await refusal(transformAs(fixture('unsupported.jxl'), 'jpeg'))).code).toBe('E_UNSUPPORTED_MEDIA');
  });
});

describe('SVG is rasterised without scripts or network', () => {
  let canary: Server;
  let connections = 0;
  let canaryUrl = '';

  beforeAll(async () => {
    canary = createServer((_req, res) => res.end('no'));
    canary.on('connection', () => { connections++; });
    await new Promise<void>((resolve) => canary.listen(0, '127.0.0.1', resolve));
    canaryUrl = `http://127.0.0.1:${(canary.address() as AddressInfo).port}`;
  });
  afterAll(() => new Promise<void>((resolve) => canary.close(() => resolve())));

  it('renders the SVG and the loopback canary gets zero connections', async () => {
    // Sanity: the canary does count connections.
    await fetch(`${canaryUrl}/probe`).then((r) => r.text());
    const baseline = connections;
    expect(baseline).toBe(1);

    // Passed as 'svg' directly: the sniffer's view of `<?xml-stylesheet?>` prologues is not under test here.
    const result = await transformer.transform({
      source: hostileSvg(canaryUrl), sourceFormat: 'svg', spec: { width: 200, format: 'png' }, output: 'png',
    });
    expect(await inspect(result.body)).toMatchObject({ format: 'png', width: 200, height: 100 });
    await new Promise((resolve) => setTimeout(resolve, 200)); // let any stray connection arrive
    expect(connections - baseline).toBe(0);
  });
});

describe('overload', () => {
  it('a full pool answers 503 E_OVERLOADED with Retry-After, and still serves afterwards', async () => {
    const tiny = testTransformer({ IMGRELAY_WORKERS: '1', IMGRELAY_MAX_QUEUE: '0' });
    const source = fixture('photo-wood.jpg');
    const outcomes = await Promise.allSettled([1, 2, 3].map(() => transformWith(tiny, source, 'w=200')));
    expect(outcomes[0].status).toBe('fulfilled');
    for (const outcome of outcomes.slice(1)) {
      const error = (outcome as PromiseRejectedResult).reason as RelayError;
      expect(error.code).toBe('E_OVERLOADED');
      expect(error.retryAfter).toBeGreaterThanOrEqual(1);
    }
    expect((await transformWith(tiny, source, 'w=200')).width).toBe(200);
  });
});
