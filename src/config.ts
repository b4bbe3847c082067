/**
 * Configuration: every `IMGRELAY_*` variable parsed once into a frozen, typed object. All invalid values are
 * reported together (name, expected form, what was received). The core receives a Config; it never reads env.
 * Portable (no `node:` imports): the worker entry parses its `env` bindings with the same function.
 */
import ipaddr from 'ipaddr.js';
import { z } from 'zod';
import { wholeFamilyCovered } from './fetch/cidr-coverage.js';

const MiB = 1024 * 1024;

/** A `host:port:address[:targetPort]` override, like curl --connect-to (IPv6 in brackets). */
export interface ResolveRule {
  host: string;
  port: number;
  address: string;
  targetPort?: number;
}

const int = (min: number, max = Number.MAX_SAFE_INTEGER) => {
  const expected = max === Number.MAX_SAFE_INTEGER ? `an integer of at least ${min}` : `an integer between ${min} and ${max}`;
  return z.string().trim().regex(/^\d+$/, expected)
    .transform(Number).pipe(z.number().int().min(min, expected).max(max, expected));
};
const bool = z.string().trim().toLowerCase()
  .pipe(z.enum(['true', 'false', '1', '0', 'yes', 'no'])).transform((v) => ['true', '1', 'yes'].includes(v));
const list = z.string().transform((v) => v.split(',').map((s) => s.trim()).filter(Boolean));
const port = int(1, 65535);
/** A listening port: 0 asks the OS for a free one (tests, side-by-side benchmarks). */
const listenPort = int(0, 65535);
const cidrList = list.pipe(z.array(z.string().refine(isCidr, 'a CIDR such as 127.0.0.0/8 or ::1/128 (not /0)')))
  .superRefine((cidrs, ctx) => {
    const family = wholeFamilyCovered(cidrs);
    if (family) ctx.addIssue({ code: 'custom', message: `CIDRs that leave part of ${family} checked; these cover all of ${family} in effect (the address check would be off)` });
  });
const dnsServerList = list.pipe(z.array(z.string().refine((v) => parseDnsServer(v) !== undefined,
  'ip or ip:port, IPv6 in brackets when a port is given ([::1]:53)')));
const resolveList = list.pipe(z.array(z.string().transform((v, ctx) => {
  const rule = parseResolveRule(v);
  if (!rule) ctx.addIssue({ code: 'custom', message: 'host:port:address[:targetPort], IPv6 in brackets' });
  return rule as ResolveRule;
})));

/** Where the S3/R2 stores keep their keys when IMGRELAY_S3_PREFIX is not set (it was the bucket root before). */
export const DEFAULT_S3_PREFIX = 'imgrelay/';

/** The table of variables: name → [schema, default]. Defaults are strings, parsed like user input. */
const VARS = {
  PORT: [listenPort, '8080'],
  HOST: [z.string().min(1), '0.0.0.0'],
  ADMIN_PORT: [listenPort, '8081'],
  ADMIN_HOST: [z.string().min(1), '127.0.0.1'],
  ADMIN_TOKENS: [list.pipe(z.array(z.string().min(16, 'tokens of at least 16 characters'))), ''],
  STORE: [z.enum(['fs', 's3', 'none']), 'fs'],
  CACHE_DIR: [z.string().min(1), './.imgrelay-cache'],
  CACHE_MAX_MB: [int(1), '10240'],
  S3_BUCKET: [z.string(), ''],
  S3_ENDPOINT: [z.union([z.literal(''), z.url()]), ''],
  S3_REGION: [z.string().min(1), 'us-east-1'],
  // Default: keys under `imgrelay/`, never at the root of a possibly shared bucket (README "Migration").
  S3_PREFIX: [z.string(), DEFAULT_S3_PREFIX],
  S3_LEGACY_ROOT: [bool, 'true'],
  S3_FORCE_PATH_STYLE: [bool, 'false'],
  S3_CHECKSUMS: [z.enum(['WHEN_REQUIRED', 'WHEN_SUPPORTED']), 'WHEN_REQUIRED'],
  STORE_TIMEOUT_MS: [int(1, 600_000), '2000'],
  WRITE_QUEUE: [int(0, 100_000), '256'],
  MEMORY_CACHE_MB: [int(0, 1_048_576), '256'],
  MEMORY_ENTRY_MAX_MB: [int(1, 1024), '16'],
  ALLOWED_HOSTS: [list, '*'],
  BLOCKED_HOSTS: [list, ''],
  ALLOW_PRIVATE_NETWORKS: [cidrList, ''],
  RESOLVE: [resolveList, ''],
  DNS_SERVERS: [dnsServerList, ''],
  PUBLIC_HOSTS: [list.pipe(z.array(z.string().regex(/^[a-z0-9*.-]+$/i, 'host names or globs (no scheme, no port)'))), ''],
  ALLOWED_PORTS: [list.pipe(z.array(port)), '80,443'],
  MAX_SOURCE_BYTES: [int(1), String(25 * MiB)],
  MAX_SOURCE_PIXELS: [int(1), String(50_000_000)],
  MAX_OUTPUT_DIMENSION: [int(1, 16_383), '4096'],
  MAX_URL_BYTES: [int(64, 65_536), '8192'],
  UPSTREAM_TIMEOUT_MS: [int(1, 600_000), '10000'],
  CONNECT_TIMEOUT_MS: [int(1, 600_000), '5000'],
  MAX_REDIRECTS: [int(0, 20), '5'],
  UPSTREAM_PER_HOST: [int(1, 1024), '8'],
  WORKERS: [int(0, 256), ''], // 0, like unset: one per CPU
  MAX_QUEUE: [int(0, 100_000), '64'],
  TRANSFORM_TIMEOUT_S: [int(1, 3600), '30'],
  AVIF_EFFORT: [int(0, 9), '0'],
  MAX_ANIMATION_PIXELS: [int(1), String(100_000_000)],
  QUEUE_TIMEOUT_MS: [int(1, 600_000), '5000'],
  TRANSFORM_BUDGET_MS: [int(1, 3_600_000), '1500'],
  HEAVY_TRANSFORM_MS: [int(0, 3_600_000), '250'],
  HEADER_RULES: [z.string(), ''],
  CDN_PURGE: [list.pipe(z.array(z.string().regex(/^(cloudflare|((varnish|worker)\+)?https?:\/\/[^/\s?#]+\/?)$/i,
    'a comma-separated list of `cloudflare`, `varnish+http://host:port`, `worker+https://host` or http(s)://host:port'))), ''],
  // Bearer tokens of the Worker's purge route (docs/edge.md): the Worker accepts each; the Node admin sends the first.
  EDGE_PURGE_TOKEN: [list.pipe(z.array(z.string().min(16, 'tokens of at least 16 characters'))), ''],
  CF_API_TOKEN: [z.string(), ''],
  CF_ZONE_ID: [z.string(), ''],
  CF_API_BASE: [z.url(), 'https://api.cloudflare.com/client/v4'],
  LOG_LEVEL: [z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']), 'info'],
  LEGACY_OPTIONS: [z.string(), ''],
  MIN_TTL_S: [int(0), '3600'],
  MAX_TTL_S: [int(0), String(365 * 86400)],
  DEFAULT_TTL_S: [int(0), '86400'],
  STALE_IF_ERROR_S: [int(0), '86400'],
  NEGATIVE_TTL_S: [int(0, 86_400), '60'],
  CACHE_CONTROL: [z.string().min(1),
    'public, max-age=86400, s-maxage=2592000, stale-while-revalidate=86400, stale-if-error=604800'],
  PURGE_POLL_MS: [int(100, 3_600_000), '2000'],
  SHUTDOWN_TIMEOUT_MS: [int(0, 600_000), '10000'],
  // Socket bounds of both listeners (src/http/node-server.ts says why each default).
  HEADERS_TIMEOUT_MS: [int(100, 600_000), '10000'],
  REQUEST_TIMEOUT_MS: [int(100, 3_600_000), '30000'],
  KEEPALIVE_TIMEOUT_MS: [int(100, 600_000), '65000'],
  WRITE_TIMEOUT_MS: [int(100, 600_000), '30000'],
  MAX_CONNECTIONS: [int(1, 1_000_000), '1024'],
  MAX_HEADER_BYTES: [int(1024, 1_048_576), '16384'],
  ORIGIN_URL: [z.union([z.literal(''), z.url()]), ''],
  MAX_INFLIGHT_MB: [int(0, 1_048_576), '128'],
} as const satisfies Record<string, readonly [z.ZodType<unknown, string>, string]>;

type Vars = typeof VARS;
type Parsed = { [K in keyof Vars]: z.output<Vars[K][0]> };

export interface Config {
  port: number; host: string;
  adminPort: number; adminHost: string; adminTokens: readonly string[];
  store: 'fs' | 's3' | 'none'; cacheDir: string; cacheMaxBytes: number;
  s3: { bucket: string; endpoint?: string; region: string; prefix: string; forcePathStyle: boolean;
    checksums: 'WHEN_REQUIRED' | 'WHEN_SUPPORTED';
    /** Also read (and purge) entries older versions wrote at the bucket root: only with the default prefix. */
    legacyRoot: boolean; };
  storeTimeoutMs: number; writeQueue: number;
  memoryCacheBytes: number; memoryEntryMaxBytes: number;
  allowedHosts: readonly string[]; blockedHosts: readonly string[];
  allowPrivateNetworks: readonly string[]; resolve: readonly ResolveRule[]; allowedPorts: readonly number[];
  /** c-ares servers (`ip`, `ip:port`, `[v6]:port`); empty = the system's. */
  dnsServers: readonly string[];
  /** This service's own host names: a source on them is a loop (508). */
  publicHosts: readonly string[];
  maxSourceBytes: number; maxSourcePixels: number; maxOutputDimension: number; maxUrlBytes: number;
  upstreamTimeoutMs: number; connectTimeoutMs: number; maxRedirects: number; upstreamPerHost: number;
  /** 0 = "as many as CPUs", resolved by the entry that knows the CPU count. */
  workers: number; maxQueue: number; transformTimeoutS: number; avifEffort: number; maxAnimationPixels: number;
  /** Bounded cost: queue wait; a job's estimated CPU budget; the estimate above which a job takes the heavy lane. */
  queueTimeoutMs: number; transformBudgetMs: number; heavyTransformMs: number;
  headerRulesFile?: string;
  cdnPurge: readonly string[]; cfApiToken?: string; cfZoneId?: string; edgePurgeTokens: readonly string[];
  /** Cloudflare API base (overridable so a contract test can stand in for the real API). */
  cfApiBase: string;
  logLevel: string;
  legacyOptions?: string;
  minTtlS: number; maxTtlS: number; negativeTtlS: number; cacheControl: string;
  /** Freshness of a source whose upstream sent no caching headers (then clamped like any TTL). */
  defaultTtlS: number;
  /** Ceiling of the responses' `stale-if-error`. */
  staleIfErrorS: number;
  purgePollMs: number; shutdownTimeoutMs: number;
  originUrl?: string;
  /** Socket deadlines and caps of the public and admin listeners. */
  sockets: { headersTimeoutMs: number; requestTimeoutMs: number; keepAliveTimeoutMs: number; writeTimeoutMs: number;
    maxConnections: number; maxHeaderBytes: number };
  /** Source bytes being fetched, held for a transform or queued for a store write, at most (0 = unbounded). */
  maxInflightBytes: number;
}

export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`Invalid configuration:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.name = 'ConfigError';
  }
}

/** Parses `IMGRELAY_*` from `env`; throws ConfigError naming every invalid variable at once. */
export function parseConfig(env: Record<string, string | undefined>): Config {
  const problems: string[] = [];
  const out: Record<string, unknown> = {};
  for (const [key, [schema, fallback]] of Object.entries(VARS)) {
    const name = `IMGRELAY_${key}`;
    const raw = env[name] ?? fallback;
    if (key === 'WORKERS' && raw === '') { out[key] = 0; continue; }
    const result = (schema as z.ZodType).safeParse(raw);
    if (result.success) out[key] = result.data;
    else problems.push(`${name}=${JSON.stringify(raw)}: expected ${describeIssues(result.error)}`);
  }
  const v = out as Parsed;
  if (problems.length === 0) problems.push(...crossChecks(v));
  if (problems.length > 0) throw new ConfigError(problems);
  return deepFreeze(toConfig(v));
}

function describeIssues(error: z.ZodError): string {
  return [...new Set(error.issues.map((i) => i.message))].join('; ');
}

function crossChecks(v: Parsed): string[] {
  const problems: string[] = [];
  if (v.STORE === 's3' && !v.S3_BUCKET) problems.push('IMGRELAY_S3_BUCKET: required when IMGRELAY_STORE=s3');
  if (v.CDN_PURGE.some((t) => t.toLowerCase() === 'cloudflare') && (!v.CF_ZONE_ID || !v.CF_API_TOKEN)) {
    problems.push('IMGRELAY_CDN_PURGE=cloudflare: requires IMGRELAY_CF_ZONE_ID and IMGRELAY_CF_API_TOKEN');
  }
  if (v.CDN_PURGE.some((t) => /^worker\+/i.test(t)) && v.EDGE_PURGE_TOKEN.length === 0) {
    problems.push('IMGRELAY_CDN_PURGE=worker+…: requires IMGRELAY_EDGE_PURGE_TOKEN');
  }
  if (v.MIN_TTL_S > v.MAX_TTL_S) problems.push('IMGRELAY_MIN_TTL_S: must not exceed IMGRELAY_MAX_TTL_S');
  if (v.HEADERS_TIMEOUT_MS > v.REQUEST_TIMEOUT_MS) {
    problems.push('IMGRELAY_HEADERS_TIMEOUT_MS: must not exceed IMGRELAY_REQUEST_TIMEOUT_MS (headers are part of the request)');
  }
  if (v.MAX_INFLIGHT_MB > 0 && v.MAX_INFLIGHT_MB * MiB < v.MAX_SOURCE_BYTES) {
    // A source the budget can never hold would be refused as "overloaded, retry" forever.
    problems.push('IMGRELAY_MAX_INFLIGHT_MB: must hold at least one source of IMGRELAY_MAX_SOURCE_BYTES (or be 0)');
  }
  return problems;
}

function toConfig(v: Parsed): Config {
  return {
    port: v.PORT, host: v.HOST,
    adminPort: v.ADMIN_PORT, adminHost: v.ADMIN_HOST, adminTokens: v.ADMIN_TOKENS,
    store: v.STORE, cacheDir: v.CACHE_DIR, cacheMaxBytes: v.CACHE_MAX_MB * MiB,
    s3: { bucket: v.S3_BUCKET, endpoint: v.S3_ENDPOINT || undefined, region: v.S3_REGION, prefix: v.S3_PREFIX,
      forcePathStyle: v.S3_FORCE_PATH_STYLE, checksums: v.S3_CHECKSUMS,
      legacyRoot: v.S3_LEGACY_ROOT && v.S3_PREFIX === DEFAULT_S3_PREFIX },
    storeTimeoutMs: v.STORE_TIMEOUT_MS, writeQueue: v.WRITE_QUEUE,
    memoryCacheBytes: v.MEMORY_CACHE_MB * MiB, memoryEntryMaxBytes: v.MEMORY_ENTRY_MAX_MB * MiB,
    allowedHosts: v.ALLOWED_HOSTS, blockedHosts: v.BLOCKED_HOSTS,
    allowPrivateNetworks: v.ALLOW_PRIVATE_NETWORKS, resolve: v.RESOLVE, allowedPorts: v.ALLOWED_PORTS,
    dnsServers: v.DNS_SERVERS.map((server) => parseDnsServer(server) as string), publicHosts: v.PUBLIC_HOSTS,
    maxSourceBytes: v.MAX_SOURCE_BYTES, maxSourcePixels: v.MAX_SOURCE_PIXELS,
    maxOutputDimension: v.MAX_OUTPUT_DIMENSION, maxUrlBytes: v.MAX_URL_BYTES,
    upstreamTimeoutMs: v.UPSTREAM_TIMEOUT_MS, connectTimeoutMs: v.CONNECT_TIMEOUT_MS,
    maxRedirects: v.MAX_REDIRECTS, upstreamPerHost: v.UPSTREAM_PER_HOST,
    workers: v.WORKERS, maxQueue: v.MAX_QUEUE, transformTimeoutS: v.TRANSFORM_TIMEOUT_S,
    avifEffort: v.AVIF_EFFORT, maxAnimationPixels: v.MAX_ANIMATION_PIXELS,
    queueTimeoutMs: v.QUEUE_TIMEOUT_MS, transformBudgetMs: v.TRANSFORM_BUDGET_MS, heavyTransformMs: v.HEAVY_TRANSFORM_MS,
    headerRulesFile: v.HEADER_RULES || undefined,
    cdnPurge: v.CDN_PURGE, cfApiToken: v.CF_API_TOKEN || undefined, cfZoneId: v.CF_ZONE_ID || undefined,
    edgePurgeTokens: v.EDGE_PURGE_TOKEN,
    cfApiBase: v.CF_API_BASE.replace(/\/+$/, ''),
    logLevel: v.LOG_LEVEL, legacyOptions: v.LEGACY_OPTIONS || undefined,
    minTtlS: v.MIN_TTL_S, maxTtlS: v.MAX_TTL_S, negativeTtlS: v.NEGATIVE_TTL_S, cacheControl: v.CACHE_CONTROL,
    defaultTtlS: v.DEFAULT_TTL_S, staleIfErrorS: v.STALE_IF_ERROR_S,
    purgePollMs: v.PURGE_POLL_MS, shutdownTimeoutMs: v.SHUTDOWN_TIMEOUT_MS,
    originUrl: v.ORIGIN_URL || undefined,
    sockets: { headersTimeoutMs: v.HEADERS_TIMEOUT_MS, requestTimeoutMs: v.REQUEST_TIMEOUT_MS,
      keepAliveTimeoutMs: v.KEEPALIVE_TIMEOUT_MS, writeTimeoutMs: v.WRITE_TIMEOUT_MS,
      maxConnections: v.MAX_CONNECTIONS, maxHeaderBytes: v.MAX_HEADER_BYTES },
    maxInflightBytes: v.MAX_INFLIGHT_MB * MiB,
  };
}

/** `a.b.c.d/n` or `v6/n`, prefix in range and not 0 (a /0 would switch the address check off). */
export function isCidr(value: string): boolean {
  const m = /^([^/]+)\/(\d{1,3})$/.exec(value);
  if (!m) return false;
  const bits = Number(m[2]);
  const v4 = /^\d{1,3}(\.\d{1,3}){3}$/.test(m[1]) && m[1].split('.').every((o) => Number(o) <= 255);
  const v6 = !v4 && m[1].includes(':') && /^[0-9a-f:.]+$/i.test(m[1]);
  return (v4 && bits >= 1 && bits <= 32) || (v6 && bits >= 1 && bits <= 128);
}

/** `ip`, `ip:port`, `[v6]` or `[v6]:port` → the spelling `Resolver#setServers` takes; undefined when invalid. */
export function parseDnsServer(value: string): string | undefined {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([0-9.]+)|([0-9a-fA-F:]+))(?::(\d{1,5}))?$/.exec(value.trim());
  if (!m) return undefined;
  const v6 = m[1] ?? m[3];
  const ip = v6 ?? m[2];
  if (m[3] !== undefined && m[4] !== undefined) return undefined; // bare IPv6 with a port is ambiguous
  const valid = v6 !== undefined ? ipaddr.IPv6.isValid(v6) : ipaddr.IPv4.isValidFourPartDecimal(ip);
  const portNumber = m[4] === undefined ? 53 : Number(m[4]);
  if (!valid || portNumber < 1 || portNumber > 65535) return undefined;
  if (m[4] === undefined) return ip;
  return v6 !== undefined ? `[${v6}]:${portNumber}` : `${ip}:${portNumber}`;
}

export function parseResolveRule(value: string): ResolveRule | undefined {
  const m = /^([^:\[\]]+):(\d{1,5}):(\[[0-9a-fA-F:.]+\]|[0-9.]+)(?::(\d{1,5}))?$/.exec(value.trim());
  if (!m) return undefined;
  const portNum = Number(m[2]);
  const target = m[4] === undefined ? undefined : Number(m[4]);
  if (portNum < 1 || portNum > 65535 || (target !== undefined && (target < 1 || target > 65535))) return undefined;
  return { host: m[1].toLowerCase(), port: portNum, address: m[3].replace(/^\[|\]$/g, ''), targetPort: target };
}

function deepFreeze<T>(value: T): T {
  if (value && typeof value === 'object') {
    for (const inner of Object.values(value)) deepFreeze(inner);
    Object.freeze(value);
  }
  return value;
}
