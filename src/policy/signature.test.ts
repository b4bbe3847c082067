import { createHmac } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { ConfigError, parseConfig } from '../config.js';
import { RelayError } from '../errors.js';
import { parsePresets } from '../url/presets.js';
import { type ImageRequest, parseImageRequest, splitRequestUrl } from '../url/request.js';
import { constantTimeEqual, createSigner, signaturePolicy, signedString } from './signature.js';

const KEY_A = 'a'.repeat(32) + '-first-signing-key';
const KEY_B = 'b'.repeat(32) + '-second-signing-key';
const SRC = 'https://Images.Example.com:443/a%20b.jpg?x=1#frag';

const parse = (url: string): ImageRequest => {
  const { pathname, rawQuery } = splitRequestUrl(`http://relay.test${url}`);
  return parseImageRequest(pathname, rawQuery)!;
};
const hmac = (key: string, text: string) => createHmac('sha256', key).update(text).digest('base64url');

async function refusal(promise: Promise<void>): Promise<string | undefined> {
  try {
    await promise;
    return undefined;
  } catch (error) {
    return error instanceof RelayError ? `${error.status} ${error.code}` : String(error);
  }
}

describe('signed string', () => {
  it('is the canonical href, a newline and the sorted options under field names', () => {
    const request = parse(`/?w=800&url=${encodeURIComponent(SRC)}&output=webp&maxage=1h`);
    expect(signedString(request)).toBe('https://images.example.com/a%20b.jpg?x=1\nformat=webp&maxAgeS=3600&width=800');
  });

  it('is one string for equivalent spellings: parameter order, path aliases, query vs path form', () => {
    const spellings = [
      `/?url=${encodeURIComponent(SRC)}&w=800&q=70`, `/?q=70&w=800&url=${encodeURIComponent(SRC)}`,
      `/cdn-cgi/image/width=800,quality=70/${SRC}`, `/cdn-cgi/image/q=70,w=800/${SRC}`,
      `/cdn-cgi/image/w=800,q=70,sig=anything/${SRC}`, `/?url=${encodeURIComponent(SRC)}&w=800&q=70&s=x`,
    ];
    const strings = new Set(spellings.map((url) => signedString(parse(url))));
    expect([...strings]).toEqual(['https://images.example.com/a%20b.jpg?x=1\nquality=70&width=800']);
  });

  it('differs when an option or the source differs, and never contains the signature', () => {
    const base = signedString(parse(`/?url=${encodeURIComponent(SRC)}&w=800`));
    expect(signedString(parse(`/?url=${encodeURIComponent(SRC)}&w=801`))).not.toBe(base);
    expect(signedString(parse(`/?url=${encodeURIComponent(SRC)}&w=800&default=example.com/x.png`))).not.toBe(base);
    expect(signedString(parse(`/?url=https://images.example.com/other.jpg&w=800`))).not.toBe(base);
    expect(signedString(parse(`/?url=${encodeURIComponent(SRC)}&w=800&s=secret-looking`))).not.toContain('secret');
  });
});

describe('parsing', () => {
  it('takes the signature out of the options (s= query, sig= path): never in the spec, so never in a cache key', () => {
    const query = parse(`/?url=${encodeURIComponent(SRC)}&w=800&s=abc_-9`);
    const path = parse(`/cdn-cgi/image/width=800,sig=abc_-9/${SRC}`);
    expect(query.options.spec).toEqual({ width: 800 });
    expect(path.options.spec).toEqual({ width: 800, quality: 85, pages: -1, keepCopyright: true }); // Cloudflare's defaults, never signed
    for (const request of [query, path]) expect(request.options.signature).toBe('abc_-9');
    expect(parse(`/?url=${encodeURIComponent(SRC)}&w=800`).options.signature).toBeUndefined();
    // The path form's own query belongs to the source: an `s=` there is part of the source URL, not a signature.
    expect(parse(`/cdn-cgi/image/width=800/${SRC.replace('?x=1#frag', '?s=1')}`).options.signature).toBeUndefined();
  });
});

describe('signer', () => {
  it('matches a plain node:crypto HMAC-SHA256 base64url of the signed string (what a page template computes)', async () => {
    const request = parse(`/cdn-cgi/image/width=800,format=auto/${SRC}`);
    const expected = hmac(KEY_A, 'https://images.example.com/a%20b.jpg?x=1\nformat=auto&width=800');
    expect(await createSigner([KEY_A, KEY_B]).sign(request)).toBe(expected);
  });

  it('verifies with any configured key and refuses other keys, truncations and other requests', async () => {
    const request = parse(`/?url=${encodeURIComponent(SRC)}&w=300`);
    const signer = createSigner([KEY_A, KEY_B]);
    const byB = hmac(KEY_B, signedString(request));
    expect(await signer.verify(request, byB)).toBe(true);
    expect(await signer.verify(request, `${byB}=`)).toBe(true);
    expect(await signer.verify(request, hmac('c'.repeat(40), signedString(request)))).toBe(false);
    expect(await signer.verify(request, byB.slice(0, -1))).toBe(false);
    expect(await signer.verify(request, '')).toBe(false);
    expect(await signer.verify(parse(`/?url=${encodeURIComponent(SRC)}&w=301`), byB)).toBe(false);
  });

  it('compares in constant time over equal lengths (no early exit on the first different character)', () => {
    expect(constantTimeEqual('abc', 'abc')).toBe(true);
    expect(constantTimeEqual('abc', 'abd')).toBe(false);
    expect(constantTimeEqual('abc', 'ab')).toBe(false);
  });
});

describe('what a signature binds', () => {
  const signer = createSigner([KEY_A]);
  const withPresets = (url: string, presets: string) => {
    const { pathname, rawQuery } = splitRequestUrl(`http://relay.test${url}`);
    return parseImageRequest(pathname, rawQuery, undefined, parsePresets(presets))!;
  };
  const base = `/?url=${encodeURIComponent(SRC)}&w=300`;

  it('cannot be moved to another source, another option, a default=, a filename or a maxage', async () => {
    const signature = await signer.sign(parse(base));
    expect(await signer.verify(parse(base), signature)).toBe(true);
    for (const other of [`/?url=${encodeURIComponent(SRC.replace('a%20b', 'c'))}&w=300`, `${base}&q=90`, `${base}&w=3000`,
      `${base}&default=evil.test/x.png`, `${base}&filename=x.exe`, `${base}&maxage=1y`, `/?url=${encodeURIComponent(SRC)}`]) {
      expect(await signer.verify(parse(other), signature), other).toBe(false);
    }
  });

  it('a p=thumb signature is void once thumb is redefined (it covered the old options), valid for the same options', async () => {
    const url = `/?url=${encodeURIComponent(SRC)}&p=thumb`;
    const signature = await signer.sign(withPresets(url, 'thumb:w=300&h=300&fit=cover'));
    expect(await signer.verify(withPresets(url, 'thumb:w=300&h=300&fit=cover;hero:w=1600'), signature)).toBe(true);
    expect(await signer.verify(withPresets(url, 'thumb:w=1600&h=1600&fit=cover'), signature)).toBe(false);
    expect(await signer.verify(parse(`/?url=${encodeURIComponent(SRC)}&w=300&h=300&fit=cover`), signature)).toBe(true);
  });

  it('a signed preset URL passes the policy in either form; a wrong signature on one is refused', async () => {
    const presets = 'thumb:w=300&h=300&fit=cover';
    const policy = signaturePolicy({ keys: [KEY_A], mode: 'transforms', unsignedHosts: [] });
    const query = `/?url=${encodeURIComponent(SRC)}&p=thumb`;
    const signature = await signer.sign(withPresets(query, presets));
    for (const url of [`${query}&s=${signature}`, `/cdn-cgi/image/preset=thumb,sig=${signature}/${SRC}`]) {
      expect(await refusal(policy.check(withPresets(url, presets))), url).toBeUndefined();
      const off = signaturePolicy({ keys: [KEY_A], mode: 'off', unsignedHosts: [] });
      expect(await refusal(off.check(withPresets(url.replace(signature, `${signature[0] === 'A' ? 'B' : 'A'}${signature.slice(1)}`), presets))), url)
        .toBe('403 E_SIGNATURE');
    }
    expect(await refusal(policy.check(withPresets(query, presets)))).toBe('403 E_SIGNATURE');
  });
});

describe('policy', () => {
  const policy = (mode: 'off' | 'transforms' | 'all', keys = [KEY_A], unsignedHosts: string[] = []) =>
    signaturePolicy({ keys, mode, unsignedHosts });
  const transform = parse(`/?url=${encodeURIComponent(SRC)}&w=300`);
  const relay = parse(`/?url=${encodeURIComponent(SRC)}&maxage=1d`);
  const legacy = parse(`/?${SRC}&s=whatever`);
  const signedTransform = async () => parse(`/?url=${encodeURIComponent(SRC)}&w=300&s=${await createSigner([KEY_A]).sign(transform)}`);

  it('off: lets unsigned requests through, but a wrong signature is refused when keys are configured', async () => {
    expect(await refusal(policy('off').check(transform))).toBeUndefined();
    expect(await refusal(policy('off').check(parse(`/?url=${encodeURIComponent(SRC)}&w=300&s=bad`)))).toBe('403 E_SIGNATURE');
    expect(await refusal(policy('off', []).check(parse(`/?url=${encodeURIComponent(SRC)}&w=300&s=bad`)))).toBeUndefined();
  });

  it('transforms: refuses an unsigned transform; relays (query without options, legacy) pass', async () => {
    expect(await refusal(policy('transforms').check(transform))).toBe('403 E_SIGNATURE');
    expect(await refusal(policy('transforms').check(await signedTransform()))).toBeUndefined();
    expect(await refusal(policy('transforms').check(relay))).toBeUndefined();
    expect(await refusal(policy('transforms').check(legacy))).toBeUndefined();
  });

  it('all: refuses unsigned relays and legacy URLs unless the legacy source host is in the unsigned globs', async () => {
    expect(await refusal(policy('all').check(relay))).toBe('403 E_SIGNATURE');
    expect(await refusal(policy('all').check(legacy))).toBe('403 E_SIGNATURE');
    expect(await refusal(policy('all', [KEY_A], ['*.example.com']).check(legacy))).toBeUndefined();
    expect(await refusal(policy('all', [KEY_A], ['*.example.com']).check(relay))).toBe('403 E_SIGNATURE');
    expect(await refusal(policy('all').check(await signedTransform()))).toBeUndefined();
  });
});

describe('IMGRELAY_UNSIGNED_HOSTS in all mode', () => {
  const policyFor = (globs: string) => signaturePolicy(parseConfig({ IMGRELAY_SIGNING_KEYS: KEY_A,
    IMGRELAY_REQUIRE_SIGNATURE: 'all', IMGRELAY_UNSIGNED_HOSTS: globs }).signing);
  const legacyOf = (source: string) => parse(`/?${source}`);

  it('matches the source host whatever its case, port or trailing dot; never a look-alike host', async () => {
    const policy = policyFor('ZKRES*.MyZaker.com');
    for (const source of ['http://zkres3.myzaker.com/a.jpg', 'https://ZKRES3.MYZAKER.COM./a.jpg', 'http://zkres.myzaker.com:8080/a.jpg']) {
      expect(await refusal(policy.check(legacyOf(source))), source).toBeUndefined();
    }
    for (const source of ['http://zkres.myzaker.com.evil.test/a.jpg', 'http://evil.test/zkres.myzaker.com/a.jpg',
      'http://zkres.myzaker.com@evil.test/a.jpg', 'http://myzaker.com/a.jpg']) {
      expect(await refusal(policy.check(legacyOf(source))), source).toBe('403 E_SIGNATURE');
    }
  });

  it('an internationalised host matches written in Unicode or in its xn-- form; a port or path in a glob stops the start-up', async () => {
    for (const glob of ['bücher.example', 'xn--bcher-kva.example', '*.BÜCHER.example']) {
      const policy = policyFor(glob);
      const source = glob.startsWith('*') ? 'http://img.bücher.example/a.jpg' : 'http://Bücher.example/a.jpg';
      expect(await refusal(policy.check(legacyOf(source))), glob).toBeUndefined();
      expect(await refusal(policy.check(legacyOf('http://bucher.example/a.jpg'))), glob).toBe('403 E_SIGNATURE');
    }
    for (const glob of ['a.example:8080', 'bü/x.example', 'b*ü.example', 'https://a.example']) {
      expect(() => policyFor(glob), glob).toThrow(/IMGRELAY_UNSIGNED_HOSTS/);
    }
  });
});

describe('configuration', () => {
  it('refuses short keys and unknown modes without printing the key, and a mode that needs keys without keys', () => {
    const problems = (env: Record<string, string>) => {
      try {
        parseConfig(env);
        return [];
      } catch (error) {
        return (error as ConfigError).problems;
      }
    };
    const short = problems({ IMGRELAY_SIGNING_KEYS: `${KEY_A},too-short-secret` });
    expect(short.join('\n')).toMatch(/IMGRELAY_SIGNING_KEYS.*at least 32 bytes/);
    expect(short.join('\n')).not.toContain('too-short-secret');
    expect(problems({ IMGRELAY_REQUIRE_SIGNATURE: 'sometimes', IMGRELAY_SIGNING_KEYS: KEY_A }).join('\n'))
      .toMatch(/IMGRELAY_REQUIRE_SIGNATURE.*off, transforms or all/);
    for (const mode of ['transforms', 'all']) {
      expect(problems({ IMGRELAY_REQUIRE_SIGNATURE: mode })).toEqual([`IMGRELAY_REQUIRE_SIGNATURE=${mode}: requires IMGRELAY_SIGNING_KEYS`]);
    }
    const config = parseConfig({ IMGRELAY_SIGNING_KEYS: `${KEY_A}, ${KEY_B}`, IMGRELAY_REQUIRE_SIGNATURE: 'All',
      IMGRELAY_UNSIGNED_HOSTS: 'zkres*.myzaker.com' });
    expect(config.signing).toEqual({ keys: [KEY_A, KEY_B], mode: 'all', unsignedHosts: ['zkres*.myzaker.com'] });
    expect(parseConfig({}).signing).toEqual({ keys: [], mode: 'off', unsignedHosts: [] });
  });
});
