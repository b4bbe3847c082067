import { describe, expect, it } from 'vitest';
import { RelayError } from '../errors.js';
import { ByteBudget } from '../limits/byte-budget.js';
import { CappedBody, declaredLength } from './capped-body.js';
import { readBodyCapped } from './fetch-fetcher.js';

const codeOf = (run: () => unknown) => {
  try {
    run();
  } catch (error) {
    return (error as RelayError).code;
  }
  return 'none';
};

describe('CappedBody', () => {
  it('reserves a declared length before any byte and fills one buffer of that size', () => {
    const budget = new ByteBudget(100);
    const hold = budget.open();
    const body = new CappedBody(10, 50, hold);
    expect(budget.usedBytes).toBe(10);
    body.add(new Uint8Array([1, 2, 3, 4]));
    body.add(new Uint8Array([5, 6, 7, 8, 9, 10]));
    const bytes = body.finish();
    expect([...bytes]).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    expect(bytes.buffer.byteLength).toBe(10);
  });

  it('refuses a declared length over the cap (413) or over the budget (503) before reading', () => {
    const budget = new ByteBudget(100);
    expect(codeOf(() => new CappedBody(60, 50, budget.open()))).toBe('E_SOURCE_TOO_LARGE');
    expect(codeOf(() => new CappedBody(101, 200, budget.open()))).toBe('E_OVERLOADED');
    expect(budget.usedBytes).toBe(0);
  });

  it('grows the hold chunk by chunk without a declared length and stops at the budget', () => {
    const budget = new ByteBudget(10);
    const hold = budget.open();
    const body = new CappedBody(undefined, 50, hold);
    body.add(new Uint8Array(6));
    expect(budget.usedBytes).toBe(6);
    expect(codeOf(() => body.add(new Uint8Array(6)))).toBe('E_OVERLOADED');
    hold.release();
    expect(budget.usedBytes).toBe(0);
  });

  it('refuses more bytes than declared, and copies out a shorter body exactly', () => {
    const over = new CappedBody(4, 50);
    expect(codeOf(() => over.add(new Uint8Array(5)))).toBe('E_UPSTREAM');
    const short = new CappedBody(4, 50);
    short.add(new Uint8Array([9, 9]));
    expect(short.finish().buffer.byteLength).toBe(2);
  });

  it('reads only plain decimal Content-Length values', () => {
    expect(declaredLength('123')).toBe(123);
    expect([declaredLength(null), declaredLength(''), declaredLength('1e3'), declaredLength('-1')])
      .toEqual([undefined, undefined, undefined, undefined]);
  });
});

describe('readBodyCapped (web fetch)', () => {
  it('reads a gzip-encoded body longer than its declared (encoded) length', async () => {
    const decoded = new Uint8Array(5000).fill(7);
    const response = new Response(decoded, { headers: { 'content-length': '120', 'content-encoding': 'gzip' } });
    expect((await readBodyCapped(response, 10_000)).byteLength).toBe(5000);
  });
});
