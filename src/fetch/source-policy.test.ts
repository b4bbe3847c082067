import { describe, expect, it } from 'vitest';
import { parseConfig } from '../config.js';
import { RelayError } from '../errors.js';
import type { Logger } from '../logger.js';
import { createSourcePolicy, effectivePort, SOURCE_FORBIDDEN_DETAIL } from './source-policy.js';

function policy(env: Record<string, string> = {}, logger?: Logger) {
  return createSourcePolicy(parseConfig(env), logger);
}

function outcome(check: () => void): string {
  try {
    check();
    return 'allowed';
  } catch (error) {
    if (!(error instanceof RelayError)) throw error;
    return `${error.status} ${error.code}`;
  }
}

const judge = (url: string, env?: Record<string, string>) => outcome(() => policy(env).check(new URL(url)));

describe('allowed sources', () => {
  it.each(['http://zkres2.myzaker.com/202107/abc_1024.jpg', 'https://i.pximg.net/img/1.png',
    'https://wx1.sinaimg.cn:443/large/a.jpg', 'http://93.184.215.14/a.png', 'http://[2606:4700::1111]/a.png',
    'http://xn--bcher-kva.example/a.png', 'http://Example.COM./a.png'])('allows %s', (url) => {
    expect(judge(url)).toBe('allowed');
  });
});

describe('refused with 403 (E_SOURCE_FORBIDDEN)', () => {
  it.each([
    ['a non-http scheme', 'ftp://example.com/a.png'], ['file:', 'file:///etc/passwd'],
    ['userinfo', 'http://user:pw@example.com/a.png'], ['a bare username', 'http://user@example.com/a.png'],
    ['a port not allowed', 'http://example.com:8080/a.png'],
    ['localhost', 'http://localhost/a.png'], ['localhost.', 'http://localhost./a.png'],
    ['a *.localhost name', 'http://a.b.localhost/a.png'], ['mDNS', 'http://nas.local/a.png'],
    ['a *.internal name', 'http://metadata.google.internal/a.png'], ['home.arpa', 'http://router.home.arpa/a.png'],
    ['a single label', 'http://metadata/a.png'], ['a decimal IPv4 spelling', 'http://2130706433/a.png'],
    ['an octal IPv4 spelling', 'http://0177.0.0.1/a.png'], ['a hex IPv4 spelling', 'http://0x7f000001/a.png'],
    ['a private IPv4', 'http://192.168.1.1/a.png'], ['IPv6 loopback', 'http://[::1]/a.png'],
    ['a v4-mapped loopback', 'http://[::ffff:127.0.0.1]/a.png'], ['NAT64 loopback', 'http://[64:ff9b::7f00:1]/a.png'],
  ])('refuses %s (%s)', (_name, url) => {
    expect(judge(url)).toBe('403 E_SOURCE_FORBIDDEN');
  });

  it('refuses IMGRELAY_BLOCKED_HOSTS globs, including a * inside a label', () => {
    const env = { IMGRELAY_BLOCKED_HOSTS: '*.example.com,zkres*.myzaker.com' };
    expect(['http://a.example.com/x', 'http://a.b.example.com/x', 'http://zkres2.myzaker.com/x',
      'http://example.com/x', 'http://myzaker.com/x'].map((u) => judge(u, env)))
      .toEqual(['403 E_SOURCE_FORBIDDEN', '403 E_SOURCE_FORBIDDEN', '403 E_SOURCE_FORBIDDEN', 'allowed', 'allowed']);
  });

  it('refuses hosts outside IMGRELAY_ALLOWED_HOSTS', () => {
    const env = { IMGRELAY_ALLOWED_HOSTS: 'zkres*.myzaker.com,*.sinaimg.cn' };
    expect(['http://zkres1.myzaker.com/x', 'http://wx3.sinaimg.cn/x', 'http://example.com/x'].map((u) => judge(u, env)))
      .toEqual(['allowed', 'allowed', '403 E_SOURCE_FORBIDDEN']);
  });

  it('allows an extra port from IMGRELAY_ALLOWED_PORTS', () => {
    expect(judge('http://example.com:8080/a.png', { IMGRELAY_ALLOWED_PORTS: '80,443,8080' })).toBe('allowed');
  });

  it('relaxes addresses but never names with IMGRELAY_ALLOW_PRIVATE_NETWORKS', () => {
    const env = { IMGRELAY_ALLOW_PRIVATE_NETWORKS: '127.0.0.0/8' };
    expect([judge('http://127.0.0.1/a.png', env), judge('http://localhost/a.png', env)])
      .toEqual(['allowed', '403 E_SOURCE_FORBIDDEN']);
  });

  it('gives every refusal the same client-visible detail and logs the precise reason', () => {
    const reasons: string[] = [];
    const logger: Logger = { debug: (o) => reasons.push((o as { reason: string }).reason), info() {}, warn() {}, error() {} };
    const details = ['ftp://a.com/x', 'http://localhost/x', 'http://10.0.0.1/x', 'http://u@a.com/x'].map((url) => {
      try {
        policy({}, logger).check(new URL(url));
        return 'allowed';
      } catch (error) {
        return (error as RelayError).detail;
      }
    });
    expect(new Set(details)).toEqual(new Set([SOURCE_FORBIDDEN_DETAIL]));
    expect(new Set(reasons).size).toBe(4);
  });
});

describe('URL length', () => {
  it('answers 414 over IMGRELAY_MAX_URL_BYTES and allows exactly the limit', () => {
    const env = { IMGRELAY_MAX_URL_BYTES: '100' };
    const base = 'http://example.com/';
    expect(judge(base + 'a'.repeat(100 - base.length), env)).toBe('allowed');
    expect(judge(base + 'a'.repeat(101 - base.length), env)).toBe('414 E_URL_TOO_LONG');
  });
});

describe('effectivePort', () => {
  it('uses the scheme default when the URL has none', () => {
    expect([effectivePort(new URL('http://a.com/')), effectivePort(new URL('https://a.com/')),
      effectivePort(new URL('http://a.com:81/'))]).toEqual([80, 443, 81]);
  });
});

describe('loops (IMGRELAY_PUBLIC_HOSTS, nested proxy URLs)', () => {
  const env = { IMGRELAY_PUBLIC_HOSTS: 'img.relay.example' };

  it('refuses a source on a public host with 508, named as a loop even where its port alone would be a 403', () => {
    expect(judge('http://img.relay.example/a.jpg', env)).toBe('508 E_LOOP');
    expect(judge('http://img.relay.example:8080/a.jpg', env)).toBe('508 E_LOOP');
    expect(judge('http://img.relay.example:8080/a.jpg')).toBe('403 E_SOURCE_FORBIDDEN');
  });

  it('refuses a foreign proxy URL wrapping a public host with 508, and lets a plain one through', () => {
    expect(judge('http://weserv.example/?url=img.relay.example/a.jpg', env)).toBe('508 E_LOOP');
    expect(judge('http://weserv.example/?url=photos.example/a.jpg', env)).toBe('allowed');
  });
});
