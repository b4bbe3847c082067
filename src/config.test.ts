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

  it('keeps S3 keys under imgrelay/ by default, reading the old root only then; an explicit prefix keeps its meaning', () => {
    expect(parseConfig({}).s3).toMatchObject({ prefix: 'imgrelay/', legacyRoot: true });
    expect(parseConfig({ IMGRELAY_S3_LEGACY_ROOT: 'false' }).s3).toMatchObject({ prefix: 'imgrelay/', legacyRoot: false });
    expect(parseConfig({ IMGRELAY_S3_PREFIX: '' }).s3).toMatchObject({ prefix: '', legacyRoot: false });
    expect(parseConfig({ IMGRELAY_S3_PREFIX: 'cache/img' }).s3).toMatchObject({ prefix: 'cache/img', legacyRoot: false });
  });

  it('reads WORKERS=0 like unset (one transform slot per CPU), and still refuses a negative count', () => {
    expect(parseConfig({ IMGRELAY_WORKERS: '0' }).workers).toBe(parseConfig({}).workers);
    expect(parseConfig({ IMGRELAY_WORKERS: '3' }).workers).toBe(3);
    expect(() => parseConfig({ IMGRELAY_WORKERS: '-1' })).toThrow(ConfigError);
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

  it('refuses, with the other invalid values, an allow list that covers all of IPv4 or IPv6 in any spelling', () => {
    for (const cidrs of ['::ffff:0:0/96', '0.0.0.0/1,128.0.0.0/1', '::/1,8000::/1']) {
      let error: ConfigError | undefined;
      try {
        parseConfig({ IMGRELAY_ALLOW_PRIVATE_NETWORKS: cidrs, IMGRELAY_PORT: 'eighty' });
      } catch (e) {
        error = e as ConfigError;
      }
      expect(error?.problems.map((p) => p.split('=')[0])).toEqual(['IMGRELAY_PORT', 'IMGRELAY_ALLOW_PRIVATE_NETWORKS']);
      expect(error?.message).toMatch(/cover all of IPv[46]/);
    }
    expect(parseConfig({ IMGRELAY_ALLOW_PRIVATE_NETWORKS: '127.0.0.0/8,::1/128' }).allowPrivateNetworks).toHaveLength(2);
  });

  it('parses IMGRELAY_DNS_SERVERS as ip[:port], IPv6 in brackets, and refuses anything else', () => {
    const config = parseConfig({ IMGRELAY_DNS_SERVERS: '1.1.1.1, 127.0.0.1:5353, [::1]:53, 2606:4700::1111, [fd00::1]' });
    expect(config.dnsServers).toEqual(['1.1.1.1', '127.0.0.1:5353', '[::1]:53', '2606:4700::1111', 'fd00::1']);
    expect(parseConfig({}).dnsServers).toEqual([]);
    for (const bad of ['dns.google', '1.1.1.1:0', '::1:53x', '300.1.1.1', '1.1.1.1:70000']) {
      expect(() => parseConfig({ IMGRELAY_DNS_SERVERS: bad }), bad).toThrow(/IMGRELAY_DNS_SERVERS/);
    }
  });

  it('parses IMGRELAY_PUBLIC_HOSTS as host names or globs, and refuses a URL or a port there', () => {
    expect(parseConfig({ IMGRELAY_PUBLIC_HOSTS: 'img.example.com, *.img.example.com' }).publicHosts)
      .toEqual(['img.example.com', '*.img.example.com']);
    for (const bad of ['https://img.example.com', 'img.example.com:8080']) {
      expect(() => parseConfig({ IMGRELAY_PUBLIC_HOSTS: bad }), bad).toThrow(/IMGRELAY_PUBLIC_HOSTS/);
    }
  });

  it('parses --connect-to style overrides, IPv6 in brackets', () => {
    const config = parseConfig({ IMGRELAY_RESOLVE: 'a.example:80:127.0.0.1:8080, b.example:443:[::1]' });
    expect(config.resolve).toEqual([
      { host: 'a.example', port: 80, address: '127.0.0.1', targetPort: 8080 },
      { host: 'b.example', port: 443, address: '::1', targetPort: undefined },
    ]);
  });

  it('freshness: a day for sources that say nothing, stale-if-error at most a day; both configurable', () => {
    expect(parseConfig({})).toMatchObject({ defaultTtlS: 86_400, staleIfErrorS: 86_400 });
    expect(parseConfig({ IMGRELAY_DEFAULT_TTL_S: '600', IMGRELAY_STALE_IF_ERROR_S: '0' }))
      .toMatchObject({ defaultTtlS: 600, staleIfErrorS: 0 });
    expect(() => parseConfig({ IMGRELAY_STALE_IF_ERROR_S: '1d' })).toThrow(/IMGRELAY_STALE_IF_ERROR_S="1d"/);
  });

  it('bounds sockets by default, and refuses a header deadline longer than the request deadline', () => {
    expect(parseConfig({}).sockets).toEqual({ headersTimeoutMs: 10_000, requestTimeoutMs: 30_000, keepAliveTimeoutMs: 65_000,
      writeTimeoutMs: 30_000, maxConnections: 1024, maxHeaderBytes: 16_384 });
    expect(() => parseConfig({ IMGRELAY_HEADERS_TIMEOUT_MS: '40000' })).toThrow(/IMGRELAY_HEADERS_TIMEOUT_MS: must not exceed/);
    expect(() => parseConfig({ IMGRELAY_MAX_CONNECTIONS: '0' })).toThrow(/IMGRELAY_MAX_CONNECTIONS/);
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

  it('takes a worker+https:// purge target only with IMGRELAY_EDGE_PURGE_TOKEN (at least 16 characters)', () => {
    expect(() => parseConfig({ IMGRELAY_CDN_PURGE: 'worker+https://img.example.com' })).toThrow(/IMGRELAY_EDGE_PURGE_TOKEN/);
    expect(() => parseConfig({ IMGRELAY_EDGE_PURGE_TOKEN: 'short' })).toThrow(/IMGRELAY_EDGE_PURGE_TOKEN/);
    const config = parseConfig({ IMGRELAY_CDN_PURGE: 'worker+https://img.example.com',
      IMGRELAY_EDGE_PURGE_TOKEN: 'edge-token-0123456789,edge-token-next-0123' });
    expect(config.cdnPurge).toEqual(['worker+https://img.example.com']);
    expect(config.edgePurgeTokens).toEqual(['edge-token-0123456789', 'edge-token-next-0123']);
  });
});
