/**
 * Configuration: every `IMGRELAY_*` variable parsed once into a frozen, typed object. All invalid values are
 * reported together (name, expected form, what was received). The core receives a Config; it never reads env.
 * Portable (no `node:` imports): the worker entry parses its `env` bindings with the same function.
 */
import { z } from 'zod';
import type { ResolveRule } from './config-parse.js';
import { SIGNATURE_VARS, type SignatureConfig, signatureProblems, toSignatureConfig } from './policy/signature-config.js';
import { CLIENT_HINT_VARS, type ClientHintsConfig, toClientHintsConfig } from './policy/client-hints-config.js';
import { VARIANT_VARS, type VariantRules, toVariantRules, variantProblems } from './policy/variants-config.js';
import { type DrainConfig, DRAIN_VARS, toDrainConfig } from './http/drain-config.js';
import { bool, cidrList, dnsServerList, hostGlobList, int, list, listenPort, port, resolveList, type VarSpec } from './config-schema.js';
import { MISS_LIMIT_VARS, type MissLimitConfig, missLimitConfig, missLimitProblems } from './policy/miss-limit-config.js';
import { OBSERVE_VARS, type ObserveConfig, observeConfig } from './observe/config.js';

export { type ResolveRule, parseResolveRule } from './config-parse.js';

const MiB = 1024 * 1024;


/** Where the S3/R2 stores keep their keys when IMGRELAY_S3_PREFIX is not set (it was the bucket root before). */
export const DEFAULT_S3_PREFIX = 'imgrelay/';

/** Variables whose values are secrets: an invalid one is named, never printed to the logs. */
const SECRET_VARS = /TOKEN|KEYS/;

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
  PUBLIC_HOSTS: [hostGlobList, ''],
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
  ...SIGNATURE_VARS,
  ...VARIANT_VARS,
  ...MISS_LIMIT_VARS,
  ...OBSERVE_VARS,
  ...DRAIN_VARS,
  ...CLIENT_HINT_VARS,
} as const satisfies Record<string, VarSpec>;

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
  signing: SignatureConfig;
  /** Allowed widths/heights/qualities and presets (src/policy/variants-config.ts). */
  variants: VariantRules;
  /** Per-client token bucket on misses, and the proxies believed about who the client is (src/policy/). */
  missLimit: MissLimitConfig;
  /** The dashboard's sampler and the request logs (src/observe/config.ts). */
  observe: ObserveConfig;
  /** SIGTERM: how the public listener drains (src/http/drain.ts). */
  drain: DrainConfig;
  /** IMGRELAY_CLIENT_HINTS (src/policy/client-hints.ts). */
  clientHints: ClientHintsConfig;
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
    if (result.success) { out[key] = result.data; continue; }
    const shown = SECRET_VARS.test(key) ? '<not shown: a secret>' : JSON.stringify(raw);
    problems.push(`${name}=${shown}: expected ${describeIssues(result.error)}`);
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
  problems.push(...signatureProblems(v));
  problems.push(...variantProblems(v));
  problems.push(...missLimitProblems(v));
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
    dnsServers: v.DNS_SERVERS, publicHosts: v.PUBLIC_HOSTS,
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
    signing: toSignatureConfig(v),
    variants: toVariantRules(v),
    missLimit: missLimitConfig(v),
    observe: observeConfig(v),
    drain: toDrainConfig(v),
    clientHints: toClientHintsConfig(v),
  };
}

function deepFreeze<T>(value: T): T {
  if (value && typeof value === 'object') {
    for (const inner of Object.values(value)) deepFreeze(inner);
    Object.freeze(value);
  }
  return value;
}
