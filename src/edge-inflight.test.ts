/** The edge's in-flight budget: always bounded in an isolate, and able to hold one maximum-size source. */
import { describe, expect, it } from 'vitest';
import { ConfigError, parseConfig } from './config.js';
import { EDGE_INFLIGHT_MAX_BYTES, edgeInflightBytes } from './edge-inflight.js';

const MiB = 1024 * 1024;

describe('edgeInflightBytes', () => {
  it('MAX_INFLIGHT_MB=0 (unbounded on Node) is the 48 MiB ceiling at the edge, not an unbounded isolate', () => {
    expect(edgeInflightBytes(parseConfig({ IMGRELAY_MAX_INFLIGHT_MB: '0' }))).toBe(EDGE_INFLIGHT_MAX_BYTES);
  });

  it('takes the configured budget under the ceiling, and the ceiling above it', () => {
    expect(edgeInflightBytes(parseConfig({ IMGRELAY_MAX_INFLIGHT_MB: '32' }))).toBe(32 * MiB);
    expect(edgeInflightBytes(parseConfig({}))).toBe(EDGE_INFLIGHT_MAX_BYTES); // default 128 MiB
  });

  it('refuses at start-up a MAX_SOURCE_BYTES no isolate could ever hold (it would be 503 forever)', () => {
    const config = parseConfig({ IMGRELAY_MAX_SOURCE_BYTES: String(64 * MiB), IMGRELAY_MAX_INFLIGHT_MB: '0' });
    expect(() => edgeInflightBytes(config)).toThrow(ConfigError);
    expect(() => edgeInflightBytes(config)).toThrow(/IMGRELAY_MAX_SOURCE_BYTES=67108864: on Workers/);
  });
});
