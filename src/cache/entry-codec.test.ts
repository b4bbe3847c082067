import { describe, expect, it } from 'vitest';
import { assertStoreKey, decodeEntry, decodeMeta, encodeEntry, isStoreKey } from './entry-codec.js';
import type { StoredEntry } from './types.js';

const entry: StoredEntry = {
  body: new Uint8Array([0xff, 0xd8, 0xff, 0xe0, 1, 2, 3]),
  meta: { contentType: 'image/jpeg', etag: '"abc"', storedAt: 10, expiresAt: 20, sourceUrl: 'https://a.example/ü.jpg',
    size: 7, tags: ['a.example'], validators: { etag: '"up"' }, varyAccept: false, sourceEtag: '"s"' },
};
const hash = 'a'.repeat(64);

describe('entry frame', () => {
  it('round-trips body and meta', () => {
    const decoded = decodeEntry(encodeEntry(entry));
    expect(decoded?.meta).toEqual(entry.meta);
    expect([...decoded!.body]).toEqual([...entry.body]);
    expect(Buffer.isBuffer(decoded!.body)).toBe(false);
  });

  it('records the real body length even when meta.size is wrong', () => {
    const decoded = decodeEntry(encodeEntry({ ...entry, meta: { ...entry.meta, size: 999 } }));
    expect(decoded?.meta.size).toBe(7);
  });

  it('refuses truncated, extended and foreign frames', () => {
    const frame = encodeEntry(entry);
    expect(decodeEntry(frame.subarray(0, frame.byteLength - 1))).toBeUndefined();
    expect(decodeEntry(Buffer.concat([frame, Buffer.from([0])]))).toBeUndefined();
    expect(decodeEntry(frame.subarray(0, 5))).toBeUndefined();
    expect(decodeEntry(Buffer.from('\xff\xd8\xff\xe0 a plain JPEG', 'latin1'))).toBeUndefined();
    const badJson = Buffer.from(frame);
    badJson[8] = 0x21; // '!' where the JSON's '{' was
    expect(decodeEntry(badJson)).toBeUndefined();
  });

  it('reads the meta from a prefix of the frame (ranged reads)', () => {
    const frame = encodeEntry(entry);
    expect(decodeMeta(frame.subarray(0, frame.byteLength - entry.body.byteLength))).toEqual(entry.meta);
  });
});

describe('store keys', () => {
  it('accepts sources, variants and purge-log names', () => {
    for (const key of [`${hash}/source`, `${hash}/${'0'.repeat(64)}`, '_purge/1700000000000-ab12', '_purge/x/y.json']) {
      expect(isStoreKey(key)).toBe(true);
    }
  });

  it('refuses anything that could name another path', () => {
    for (const key of ['', `${hash}`, `${hash}/`, `${hash}/..`, `${hash}/.tmp-1`, '_purge/', '_purge/..',
      '_purge/a/../b', `${hash}\\source`, `${hash}/source\0`, `../${hash}/source`]) {
      expect(isStoreKey(key)).toBe(false);
      expect(() => assertStoreKey(key)).toThrow(expect.objectContaining({ code: 'E_BAD_REQUEST' }));
    }
  });
});
