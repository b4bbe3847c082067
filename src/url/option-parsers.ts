/**
 * The value parsers of the option table (options.ts) and the two spellings' shared refusal: portable, no Config.
 */
import { fail } from '../errors.js';

/** A parser turns the raw text into a value, or returns undefined; `expected` is said when it fails. */
export interface Parser<T> {
  expected: string;
  parse(raw: string): T | undefined;
}

export const int = (min: number, max: number): Parser<number> => ({
  expected: `an integer between ${min} and ${max}`,
  parse: (raw) => {
    if (!/^[+-]?\d+(\.0*)?$/.test(raw.trim())) return undefined;
    const n = Number.parseInt(raw, 10);
    return n >= min && n <= max ? n : undefined;
  },
});

export const float = (min: number, max: number): Parser<number> => ({
  expected: `a number between ${min} and ${max}`,
  parse: (raw) => {
    if (!/^[+-]?(\d+\.?\d*|\.\d+)$/.test(raw.trim())) return undefined;
    const n = Number(raw);
    return n >= min && n <= max ? Math.round(n * 1000) / 1000 : undefined;
  },
});

export const oneOf = <T>(mapping: Record<string, T>): Parser<T> => ({
  expected: `one of ${Object.keys(mapping).join(', ')}`,
  parse: (raw) => (Object.hasOwn(mapping, raw.toLowerCase()) ? mapping[raw.toLowerCase()] : undefined),
});

/** weserv flags: present without a value (`&we`) means true. */
export const flag: Parser<boolean> = {
  expected: 'true, false, 1, 0 or no value',
  parse: (raw) => oneOf({ '': true, true: true, '1': true, false: false, '0': false }).parse(raw),
};

/** weserv `blur`/`sharp` without a value mean "a mild one": sigma 1. */
export const sigma = (min: number, max: number): Parser<number> => ({
  expected: `${float(min, max).expected} or no value`,
  parse: (raw) => (raw === '' ? 1 : float(min, max).parse(raw)),
});

const NAMED_COLOURS: Record<string, string> = { black: '#000000', white: '#ffffff', transparent: '#00000000' };

/** Hex colours (3, 4, 6 or 8 digits, `#` optional) and a few names → `#rrggbb` or `#rrggbbaa`, lower case. */
export const colour: Parser<string> = {
  expected: 'a hex colour (#rgb, #rgba, #rrggbb, #rrggbbaa) or black, white, transparent',
  parse: (raw) => {
    const value = raw.trim().toLowerCase();
    if (Object.hasOwn(NAMED_COLOURS, value)) return NAMED_COLOURS[value];
    const hex = /^#?([0-9a-f]{3,4}|[0-9a-f]{6}|[0-9a-f]{8})$/.exec(value)?.[1];
    if (!hex) return undefined;
    const full = hex.length <= 4 ? [...hex].map((c) => c + c).join('') : hex;
    return `#${full.endsWith('ff') && full.length === 8 ? full.slice(0, 6) : full}`;
  },
};

/** weserv `n`: -1 = every page, or a count of pages from the first. */
export const pageCount: Parser<number> = {
  expected: '-1 (all) or an integer between 1 and 1000',
  parse: (raw) => (raw.trim() === '-1' ? -1 : int(1, 1000).parse(raw)),
};

export function badOption(name: string, expected: string, received: string): never {
  const shown = received.length > 64 ? `${received.slice(0, 64)}…` : received;
  return fail('E_BAD_REQUEST', `Invalid option "${name}": expected ${expected}, received ${JSON.stringify(shown)}`);
}

export function parseOrFail<T>(parser: Parser<T>, raw: string, name: string): T {
  const value = parser.parse(raw);
  return value === undefined ? badOption(name, parser.expected, raw) : value;
}

