import { describe, expect, it } from 'vitest';
import { RelayError } from '../errors.js';
import { surrogateKeys } from '../images.js';
import { cdnTags, matcherFor, resolvePurge } from './selectors.js';
import { addressImage } from './urls.js';

const A = 'http://zkres2.myzaker.com/202107/a_1024.jpg';

describe('addressImage', () => {
  it('maps every proxy form (ours and the old CORS worker) to the canonical source', () => {
    for (const url of [
      `https://cors.zfour.workers.dev/?${A}`,
      `https://cors.zfour.workers.dev/?${encodeURIComponent(A)}`,
      `https://img.example.com/?url=${encodeURIComponent(A)}&w=300`,
      `https://img.example.com/?w=300&url=${encodeURIComponent(A)}`,
      `https://img.example.com/cdn-cgi/image/width=300,format=auto/${A}`,
    ]) {
      const addressed = addressImage(url);
      expect(addressed.proxy, url).toBe(true);
      expect(addressed.request.source.href, url).toBe(A);
    }
  });

  it('takes anything else as the source itself, canonicalised', () => {
    const addressed = addressImage('HTTP://ZKRES2.myzaker.com:80/202107/a_1024.jpg#x');
    expect(addressed).toMatchObject({ proxy: false });
    expect(addressed.request.source.href).toBe(A);
    expect(addressImage('https://example.com/?id=5').request.source.href).toBe('https://example.com/?id=5');
  });

  it('resolves relative URLs against a base and refuses them without one', () => {
    expect(addressImage('/?url=x.example/a.jpg', { base: 'https://img.example.com/p.html' }).request.source.href)
      .toBe('http://x.example/a.jpg');
    expect(() => addressImage('/a.jpg')).toThrow(RelayError);
    expect(() => addressImage('mailto:a@example.com')).toThrow(/absolute http/);
  });
});

describe('resolvePurge and matcherFor', () => {
  it('matches the union of sources, hosts, prefixes and tags', async () => {
    const { selectors, publicUrls } = resolvePurge({
      urls: [`https://img.example.com/?url=${encodeURIComponent(A)}&w=300`],
      hosts: ['Img.Example.ORG'], prefixes: ['HTTP://cdn.example.net/2021/'], tags: ['campaign-7'],
    });
    expect(publicUrls).toEqual([`https://img.example.com/?url=${encodeURIComponent(A)}&w=300`]);
    expect(selectors).toEqual({ sources: [A], hosts: ['img.example.org'], prefixes: ['http://cdn.example.net/2021/'],
      tags: ['campaign-7'], all: false });
    const matches = matcherFor(selectors);
    expect(matches(A, [])).toBe(true);
    expect(matches('https://img.example.org/x.png', [])).toBe(true);
    expect(matches('http://cdn.example.net/2021/x.png', [])).toBe(true);
    expect(matches('http://cdn.example.net/2022/x.png', [])).toBe(false);
    expect(matches('http://other.example/x.png', ['campaign-7'])).toBe(true);
    expect(matches('http://other.example/x.png', ['campaign-8'])).toBe(false);
    expect(matches('http://zkres2.myzaker.com/202107/b.jpg', [])).toBe(false);
  });

  it('bans, at a CDN, the source key of each source (not its whole host), hosts, and the hosts of prefixes', async () => {
    const { selectors } = resolvePurge({ urls: [A], hosts: ['img.example.org:8080'], prefixes: ['http://cdn.example.net/x/'] });
    const [srcKey] = await surrogateKeys(new URL(A));
    expect((await cdnTags(selectors)).sort()).toEqual([srcKey, 'host-cdn.example.net', 'host-img.example.org'].sort());
  });
});
