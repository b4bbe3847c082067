import { describe, expect, it } from 'vitest';
import { ConfigError, parseConfig } from './config.js';

describe('parseConfig', () => {
  it('gives the documented defaults for an empty environment', () => {
    const config = parseConfig({});
    expect(config.port).toBe(8080);
    expect(config.adminHost).toBe('127.0.0.1');
    expect(config.store).toBe('fs');
    expect(config.memoryCacheBytes).toBe(256 * 1024 * 1024);
    expect(config.maxSourceBytes).toBe(26_214_400);
    expect(config.allowedPorts).toEqual([80, 443]);
    expect(config.adminTokens).toEqual([]);
    expect(Object.isFrozen(config) && Object.isFrozen(config.s3)).toBe(true);
  });

  it('reports every invalid variable at once, with its name, value and expected form', () => {
    let error: ConfigError | undefined;
    try {
      parseConfig({
        IMGRELAY_PORT: 'eighty', IMGRELAY_STORE: 'redis', IMGRELAY_MEMORY_CACHE_MB: '-1',
        IMGRELAY_ALLOW_PRIVATE_NETWORKS: '0.0.0.0/0', IMGRELAY_RESOLVE: 'nohost', IMGRELAY_ALLOWED_PORTS: '80,99999',
      });
    } catch (e) {
      error = e as ConfigError;
    }
    expect(error).toBeInstanceOf(ConfigError);
    const names = error!.problems.map((p) => p.split('=')[0]);
    expect(names).toEqual(['IMGRELAY_PORT', 'IMGRELAY_STORE', 'IMGRELAY_MEMORY_CACHE_MB',
      'IMGRELAY_ALLOW_PRIVATE_NETWORKS', 'IMGRELAY_RESOLVE', 'IMGRELAY_ALLOWED_PORTS']);
    expect(error!.message).toContain('IMGRELAY_PORT="eighty": expected an integer between 0 and 65535');
    expect(error!.message).toContain('not /0');
  });

  it('parses --connect-to style overrides, IPv6 in brackets', () => {
    const config = parseConfig({ IMGRELAY_RESOLVE: 'a.example:80:127.0.0.1:8080, b.example:443:[::1]' });
    expect(config.resolve).toEqual([
      { host: 'a.example', port: 80, address: '127.0.0.1', targetPort: 8080 },
      { host: 'b.example', port: 443, address: '::1', targetPort: undefined },
    ]);
  });

  it('bounds bytes in flight at 128 MiB by default, and refuses a budget that cannot hold one maximum-size source', () => {
    expect(parseConfig({}).maxInflightBytes).toBe(128 * 1024 * 1024);
    expect(parseConfig({ IMGRELAY_MAX_INFLIGHT_MB: '0' }).maxInflightBytes).toBe(0);
    expect(() => parseConfig({ IMGRELAY_MAX_INFLIGHT_MB: '20' })).toThrow(/IMGRELAY_MAX_INFLIGHT_MB/);
    expect(parseConfig({ IMGRELAY_MAX_INFLIGHT_MB: '20', IMGRELAY_MAX_SOURCE_BYTES: '1000000' }).maxInflightBytes)
      .toBe(20 * 1024 * 1024);
  });

  it('requires a bucket for the S3 store', () => {
    expect(() => parseConfig({ IMGRELAY_STORE: 's3' })).toThrow(/IMGRELAY_S3_BUCKET/);
  });
});
