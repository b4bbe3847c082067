import { describe, expect, it } from 'vitest';
import { nestedSourceUrl } from '../url/request.js';
import { compileLoopCheck, MAX_NESTED_PROXIES, viaNamesImgrelay } from './loop-guard.js';

describe('viaNamesImgrelay', () => {
  it.each([
    '1.1 imgrelay', 'HTTP/1.1 imgrelay', '1.0 IMGRELAY', '1.1 varnish, 1.1 imgrelay', ' 1.1 imgrelay ,1.1 cdn',
    '1.1 cdn (a, b), 2 imgrelay',
  ])('recognises an imgrelay hop in %j', (via) => {
    expect(viaNamesImgrelay(via)).toBe(true);
  });

  // `1.1 imgrelay (Varnish/7.1)`: Varnish on a host named imgrelay (server.identity is the hostname), not us.
  it.each([null, undefined, '', '1.1 varnish', '1.1 imgrelay.example.com', '1.1 cdn (via imgrelay)', 'imgrelay',
    '1.1 imgrelay (Varnish/7.1)', '1.1 imgrelay:3128 (squid/5.7)', '1.1 cdn (a, 1.1 imgrelay)'])(
    'sees no imgrelay hop in %j', (via) => {
      expect(viaNamesImgrelay(via)).toBe(false);
    });
});

describe('nestedSourceUrl', () => {
  it.each([
    ['http://p.example/?https://a.example/x.jpg?q=1', 'https://a.example/x.jpg?q=1'],
    ['http://p.example/?https%253A%252F%252Fa.example%252Fx.jpg', 'https://a.example/x.jpg'],
    ['http://p.example/?w=10&url=a.example/x.jpg', 'http://a.example/x.jpg'],
    ['http://p.example/cdn-cgi/image/width=10/https://a.example/x.jpg?v=2', 'https://a.example/x.jpg?v=2'],
    ['http://p.example/cdn-cgi/image/width=10/https%3A%2F%2Fa.example%2Fx.jpg', 'https://a.example/x.jpg'],
  ])('unwraps %s', (outer, inner) => {
    expect(nestedSourceUrl(new URL(outer))).toBe(inner);
  });

  it.each(['http://a.example/x.jpg', 'http://a.example/?w=10', 'http://a.example/gallery/?url=x', 'http://a.example/?%E0%A4%A',
    'http://a.example/cdn-cgi/image/width=10'])('finds no nested source in %s', (url) => {
    expect(nestedSourceUrl(new URL(url))).toBeUndefined();
  });
});

describe('compileLoopCheck', () => {
  const check = compileLoopCheck(['img.relay.example', '*.cdn.relay.example']);

  it.each([
    ['a public host', 'http://img.relay.example/a.jpg'],
    ['a public host in capitals with a trailing dot and another port', 'https://IMG.relay.example.:8443/a.jpg'],
    ['a public host glob', 'http://eu.cdn.relay.example/a.jpg'],
    ['a foreign proxy wrapping a public host', 'http://weserv.example/?url=img.relay.example/a.jpg'],
    ['two foreign proxies wrapping a public host', 'http://a.example/?url=' +
      encodeURIComponent('http://b.example/cdn-cgi/image/w=1/http://img.relay.example/a.jpg')],
  ])('names %s a loop', (_why, url) => {
    expect(check(new URL(url))).toBeDefined();
  });

  it(`names proxy URLs nested more than ${MAX_NESTED_PROXIES} deep a loop, on any hosts`, () => {
    const deep = 'http://a.example/?url=' + encodeURIComponent('http://b.example/?url=' +
      encodeURIComponent('http://c.example/?http://d.example/x.jpg'));
    expect(check(new URL(deep))).toMatch(/nested more than/);
    const allowed = 'http://a.example/?url=' + encodeURIComponent('http://b.example/?url=http://c.example/x.jpg');
    expect(check(new URL(allowed))).toBeUndefined();
  });

  it.each(['http://photos.example/a.jpg', 'http://weserv.example/?url=photos.example/a.jpg',
    'http://relay.example/a.jpg', 'http://img.relay.example.evil.example/a.jpg'])('lets %s through', (url) => {
    expect(check(new URL(url))).toBeUndefined();
  });

  it('checks nothing but nesting depth when no public host is configured', () => {
    expect(compileLoopCheck([])(new URL('http://img.relay.example/a.jpg'))).toBeUndefined();
  });
});
