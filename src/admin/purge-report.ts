/**
 * What `POST /purge` answers: per tier and instance, what was removed, what was fenced and what could not be
 * reached. A purge that could not reach a tier (store calls failed, the purge log could not be written, a CDN
 * failed) is `partial` and answered with 207, never a plain 200. The flat fields of earlier versions (`memory`,
 * `store`, `instances`, `purgeLog`, `cdn`, `warnings`) stay, so existing scripts keep working.
 */
import type { CdnResult } from './cdn.js';

/** `done`: reached; `failed`: not (or not wholly) reached; `none`: this deployment has no such tier. */
export type TierState = 'done' | 'failed' | 'none';

export interface TierReport {
  tier: 'memory' | 'store' | 'instances' | 'cdn';
  /** This instance's id, the store kind, `purge log`, or the CDN target's name. */
  where: string;
  state: TierState;
  /** Entries removed. */
  removed?: number;
  /** Work in flight (memory) or queued writes (store) that the purge's fence kept from saving old bytes. */
  fenced?: number;
  /** Store: objects under the prefix that are not imgrelay keys, met and left alone. */
  skipped?: number;
  detail: string;
}

export interface PurgeReport {
  /** `partial` when any tier failed (HTTP 207). */
  status: 'complete' | 'partial';
  /** The instance that took the purge. */
  instance: string;
  tiers: TierReport[];
  /** One line per tier that could not be reached, with why. */
  unreached: string[];
  /** Entries removed from this instance's memory tier. */
  memory: number;
  /** Entries removed from the persistent store; null when there is none (IMGRELAY_STORE=none). */
  store: number | null;
  /** Objects under the store's prefix that are not imgrelay keys: met, left alone, counted (absent when none). */
  storeSkipped?: number;
  /** How the other instances learn of it: `logged` (purge log), or why they do not. */
  instances: string;
  purgeLog?: string;
  cdn: CdnResult[];
  warnings?: string[];
}

export interface ReportParts {
  instance: string;
  memory: { removed: number; fenced: number };
  /** Undefined without a persistent store. */
  store?: { kind: string; removed: number; failures: number; fenced: number; skipped?: number };
  instances: { state: TierState; detail: string; purgeLog?: string };
  cdn: CdnResult[];
}

export function buildReport(parts: ReportParts): PurgeReport {
  const tiers = [memoryTier(parts), storeTier(parts), instancesTier(parts), ...parts.cdn.map(cdnTier)];
  const failed = tiers.filter((tier) => tier.state === 'failed');
  const warnings = parts.store && parts.store.failures > 0 ? [`store: ${storeTier(parts).detail}`] : [];
  return {
    status: failed.length > 0 ? 'partial' : 'complete',
    instance: parts.instance,
    tiers,
    unreached: failed.map((tier) => `${tier.tier} ${tier.where}: ${tier.detail}`),
    memory: parts.memory.removed,
    store: parts.store ? parts.store.removed : null,
    ...(parts.store?.skipped ? { storeSkipped: parts.store.skipped } : {}),
    instances: parts.instances.detail,
    ...(parts.instances.purgeLog ? { purgeLog: parts.instances.purgeLog } : {}),
    cdn: parts.cdn,
    ...(warnings.length ? { warnings } : {}),
  };
}

function memoryTier({ instance, memory }: ReportParts): TierReport {
  return { tier: 'memory', where: instance, state: 'done', removed: memory.removed, fenced: memory.fenced,
    detail: memory.fenced > 0 ? `${memory.fenced} load(s) or read(s) in flight will not save their result` : 'purged' };
}

function storeTier({ store }: ReportParts): TierReport {
  if (!store) return { tier: 'store', where: 'none', state: 'none', detail: 'no persistent store (IMGRELAY_STORE=none)' };
  const failed = store.failures > 0;
  return { tier: 'store', where: store.kind, state: failed ? 'failed' : 'done', removed: store.removed, fenced: store.fenced,
    ...(store.skipped ? { skipped: store.skipped } : {}),
    detail: failed ? `${store.failures} call(s) failed during the purge; some entries may remain: purge again`
      : 'purged' };
}

function instancesTier({ instances }: ReportParts): TierReport {
  return { tier: 'instances', where: 'purge log', state: instances.state, detail: instances.detail };
}

function cdnTier(result: CdnResult): TierReport {
  return { tier: 'cdn', where: result.target, state: result.ok ? 'done' : 'failed',
    detail: result.retrying ? `${result.detail} (retrying in the background)` : result.detail };
}
