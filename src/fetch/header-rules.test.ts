import { describe, expect, it } from 'vitest';
import {
  BROWSER_USER_AGENT, BUILTIN_HEADER_RULES, HeaderRulesError, headersFor, loadHeaderRules,
} from './header-rules.js';

const sent = (url: string, rules = BUILTIN_HEADER_RULES) => headersFor(new URL(url), rules);

describe('defaults', () => {
  it('sends a browser User-Agent and Accept: image/*, and no Referer, Origin or Cookie', () => {
    expect(sent('https://example.com/a.png')).toEqual({ 'user-agent': BROWSER_USER_AGENT, accept: 'image/*' });
  });
});

describe('built-in presets', () => {
  it.each([
    ['http://zkres2.myzaker.com/202107/abc_1024.jpg', undefined],
    ['http://zkres.myzaker.com/a.jpg', undefined],
    ['https://wx1.sinaimg.cn/large/a.jpg', 'https://weibo.com/'],
    ['https://mmbiz.qpic.cn/mmbiz_jpg/a/640', undefined],
    ['https://i0.hdslb.com/bfs/archive/a.jpg', undefined],
    ['https://i.pximg.net/img-original/img/a.png', 'https://www.pixiv.net/'],
  ])('sends %s the Referer it accepts (%s)', (url, referer) => {
    const headers = sent(url);
    expect(headers.referer).toBe(referer);
    expect([headers.origin, headers.cookie]).toEqual([undefined, undefined]);
    expect(headers.accept).toBe('image/*');
  });

  it('documents why for every preset', () => {
    expect(BUILTIN_HEADER_RULES.every((rule) => (rule.why ?? '').length > 10)).toBe(true);
  });
});

describe('loadHeaderRules', () => {
  it('adds a rule for a new host and keeps the presets', () => {
    const rules = loadHeaderRules({ rules: [{ host: '*.example.org', headers: { Referer: 'https://example.org/' } }] });
    expect(sent('https://img.example.org/a.png', rules).referer).toBe('https://example.org/');
    expect(sent('https://i.pximg.net/a.png', rules).referer).toBe('https://www.pixiv.net/');
  });

  it('overrides a preset by its glob', () => {
    const rules = loadHeaderRules([{ host: 'i.pximg.net', headers: { referer: 'https://pixiv.net/artworks/1' } }]);
    expect(sent('https://i.pximg.net/a.png', rules).referer).toBe('https://pixiv.net/artworks/1');
    expect(rules.filter((r) => r.host === 'i.pximg.net')).toHaveLength(1);
  });

  it('lets a * rule change the defaults everywhere while a more specific preset still wins', () => {
    const rules = loadHeaderRules([{ host: '*', headers: { 'User-Agent': 'imgrelay/1', Referer: 'https://blog.example/' } }]);
    expect(sent('https://example.com/a.png', rules)).toEqual({ 'user-agent': 'imgrelay/1', accept: 'image/*',
      referer: 'https://blog.example/' });
    expect(sent('http://zkres2.myzaker.com/a.jpg', rules).referer).toBeUndefined();
    expect(sent('http://zkres2.myzaker.com/a.jpg', rules)['user-agent']).toBe('imgrelay/1');
  });

  it('removes a header set to null', () => {
    const rules = loadHeaderRules([{ host: 'cdn.example.com', headers: { 'user-agent': null } }]);
    expect(sent('https://cdn.example.com/a.png', rules)).toEqual({ accept: 'image/*' });
  });

  it.each([
    ['not a list', { host: 'a.com' }],
    ['a rule without host', [{ headers: {} }]],
    ['a header value with CRLF', [{ host: 'a.com', headers: { referer: 'x\r\nX-Evil: 1' } }]],
    ['an invalid header name', [{ host: 'a.com', headers: { 'bad name': 'x' } }]],
    ['a header the client owns', [{ host: 'a.com', headers: { Host: 'internal' } }]],
    ['a conditional header', [{ host: 'a.com', headers: { 'If-None-Match': '"x"' } }]],
    ['a host that is not a glob', [{ host: 'http://a.com/', headers: {} }]],
    ['an unknown field', [{ host: 'a.com', headers: {}, hedaers: {} }]],
  ])('refuses a file with %s, naming the problem', (_name, json) => {
    expect(() => loadHeaderRules(json)).toThrow(HeaderRulesError);
  });

  it('names every problem in one error', () => {
    try {
      loadHeaderRules([{ host: 'a.com', headers: { Host: 'x' } }, { host: '', headers: {} }]);
      expect.unreachable();
    } catch (error) {
      expect((error as HeaderRulesError).problems.length).toBeGreaterThanOrEqual(2);
      expect((error as Error).message).toContain('IMGRELAY_HEADER_RULES');
    }
  });
});
