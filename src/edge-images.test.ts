/**
 * What the edge sends to Cloudflare's Images binding, and what it keeps for the Node origin: the mapping from
 * imgrelay's parsed options (both URL forms) to the binding's transform and output options. Pure: the binding
 * itself is exercised in workerd (test/worker/edge-images.test.ts).
 */
import { describe, expect, it } from 'vitest';
import { RelayError } from './errors.js';
import { bindingError, bindingOutput, bindingTransform, createImagesTransformer, edgeImagesBlocker, type ImagesBindingLike,
  optionName } from './edge-images.js';
import { parseCfOptions, parseQueryOptions, withCfDefaults } from './url/options.js';

const query = (raw: string) => parseQueryOptions(new URLSearchParams(raw)).spec;
const path = (raw: string) => parseCfOptions(raw).spec;

describe('edgeImagesBlocker: what runs at the edge', () => {
  it('accepts resizing, every Cloudflare fit, side gravities, quality, format, animation and background', () => {
    for (const spec of [query('w=300'), query('w=300&h=200&fit=cover&a=top'), query('w=300&dpr=2&q=60&output=auto'),
      query('w=300&h=300&fit=contain&bg=ff0000'), query('w=300&h=300&fit=fill'), query('n=-1&w=100'),
      path('width=300,fit=scale-down'), path('width=300,height=300,fit=crop,gravity=auto'), path('fit=pad,w=10,h=10'),
      path('anim=true,w=50'), path('anim=false,w=50'), path('format=avif,quality=50,w=10'),
      withCfDefaults(parseCfOptions('width=300')).spec, path('width=300,metadata=copyright'), path('width=300,metadata=none')]) {
      expect(edgeImagesBlocker(spec), JSON.stringify(spec)).toBeUndefined();
    }
  });

  it('names the first option the binding cannot do as the Node service does (forwarded or 501)', () => {
    expect(edgeImagesBlocker(query('w=300&fit=outside'))).toBe('fit');
    expect(edgeImagesBlocker(query('w=300&h=300&fit=fill&we=true'))).toBe('withoutEnlargement');
    expect(edgeImagesBlocker(query('w=300&h=300&fit=cover&a=top-left'))).toBe('gravity');
    expect(edgeImagesBlocker(query('w=300&n=3'))).toBe('pages');
    expect(edgeImagesBlocker(query('w=300&il=true'))).toBe('interlace');
    expect(edgeImagesBlocker(query('w=300&blur=5'))).toBe('blur');
    expect(edgeImagesBlocker(path('width=300,sharpen=2'))).toBe('sharpen');
    expect(edgeImagesBlocker(path('width=300,metadata=keep'))).toBe('keepMetadata');
  });

  it('does not refuse an option that has no effect (normalised away), like a gravity without a crop', () => {
    expect(edgeImagesBlocker(query('w=300&a=top-left'))).toBeUndefined();
  });

  it('names the option as the client spelled it in its URL form', () => {
    expect(optionName('interlace', 'query')).toBe('il');
    expect(optionName('pages', 'path')).toBe('anim');
    expect(optionName('keepMetadata', 'path')).toBe('metadata');
    expect(optionName('somethingNew', 'query')).toBe('somethingNew');
  });
});

describe('bindingTransform / bindingOutput', () => {
  it('folds dpr into the box and speaks Cloudflare\'s fit and gravity names', () => {
    expect(bindingTransform(query('w=300&dpr=2'))).toEqual({ width: 600, fit: 'contain' });
    expect(bindingTransform(query('w=300&h=200&fit=cover&a=attention'))).toEqual({ width: 300, height: 200, fit: 'cover',
      gravity: 'auto' });
    expect(bindingTransform(path('width=300,fit=scale-down'))).toEqual({ width: 300, fit: 'scale-down' });
    expect(bindingTransform(path('width=300,height=100,fit=crop'))).toEqual({ width: 300, height: 100, fit: 'crop' });
    expect(bindingTransform(query('w=30&h=30&fit=contain&bg=00ff00'))).toEqual({ width: 30, height: 30, fit: 'pad',
      background: '#00ff00' });
    expect(bindingTransform(query('output=webp'))).toEqual({});
  });

  it('asks for the format the image service resolved, with quality and animation as on Node', () => {
    expect(bindingOutput({ spec: query('w=10&q=55&output=auto'), output: 'avif' }))
      .toEqual({ format: 'image/avif', quality: 55, anim: false });
    // imgrelay's default quality, not the binding's (Cloudflare's); none for lossless outputs.
    expect(bindingOutput({ spec: query('w=10'), output: 'jpeg' })).toEqual({ format: 'image/jpeg', quality: 80, anim: false });
    expect(bindingOutput({ spec: query('w=10&q=50'), output: 'png' })).toEqual({ format: 'image/png', anim: false });
    expect(bindingOutput({ spec: query('n=-1&w=10'), output: 'webp' })).toEqual({ format: 'image/webp', quality: 80, anim: true });
    expect(bindingOutput({ spec: query('output=jpg&bg=ffffff'), output: 'jpeg' }))
      .toEqual({ format: 'image/jpeg', quality: 80, background: '#ffffff', anim: false });
  });
});

describe('bindingError', () => {
  it('an image the binding refuses is the client\'s 415/422; a failing binding is a 502, never a cached verdict', () => {
    const coded = (code: number, message: string) => Object.assign(new Error(message), { code });
    expect(bindingError(coded(9520, 'ERROR 9520: unsupported')).code).toBe('E_UNSUPPORTED_MEDIA');
    expect(bindingError(coded(9523, 'ERROR 9523: bad input')).code).toBe('E_IMAGE_INVALID');
    expect(bindingError(coded(9523, 'Unexpected error response 500: boom')).code).toBe('E_UPSTREAM');
    expect(bindingError(new TypeError('network lost')).code).toBe('E_UPSTREAM');
    const mine = new RelayError('E_OVERLOADED', 'x');
    expect(bindingError(mine)).toBe(mine);
  });
});

describe('the transform deadline', () => {
  // A stand-in binding that never answers: the local (miniflare) binding cannot be made to hang, so this one is fake.
  const hanging: ImagesBindingLike = {
    info: () => new Promise(() => {}),
    input: () => { throw new Error('not reached'); },
  };

  it('a binding that never answers is a 504 E_TRANSFORM_TIMEOUT after IMGRELAY_TRANSFORM_TIMEOUT_S, not a hung request', async () => {
    const transformer = createImagesTransformer(hanging,
      { maxSourcePixels: 1e6, maxSourceBytes: 1e6, transformTimeoutS: 0.2 });
    const started = Date.now();
    const job = { source: new Uint8Array([0xff, 0xd8, 0xff]), sourceFormat: 'jpeg', spec: { width: 10 }, output: 'jpeg' } as const;
    await expect(transformer.transform(job)).rejects.toMatchObject({ code: 'E_TRANSFORM_TIMEOUT', status: 504 });
    expect(Date.now() - started).toBeLessThan(5000); // generous: the deadline is 0.2 s
  });
});
