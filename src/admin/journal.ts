/**
 * The last purges and warm jobs of this instance, for the dashboard's tables: who (token id), when, what, and each
 * tier's result. Bounded (the last 50 of each); the full reports went to the caller and the log already.
 */
import type { PurgeReport } from './purge-report.js';
import { Ring } from './ring.js';
import type { WarmReport } from './warm.js';

export const JOURNAL_ENTRIES = 50;
const FAILURES_KEPT = 5;

export interface PurgeRecord {
  at: number;
  tokenId: string;
  selectors: Record<string, unknown>;
  status: string;
  tiers: Array<{ tier: string; where: string; state: string; removed?: number; fenced?: number; detail?: string }>;
}

export interface WarmRecord {
  at: number;
  tokenId: string;
  total: number;
  ok: number;
  failed: number;
  /** Where each warmed image came from: `MISS` (fetched now), `HIT-MEMORY`, `HIT-STORE`, `STALE`. */
  byCache: Record<string, number>;
  /** The first few failures (URL, code). */
  failures: Array<{ url: string; code?: string }>;
}

export class AdminJournal {
  private readonly purgeRing = new Ring<PurgeRecord>(JOURNAL_ENTRIES);
  private readonly warmRing = new Ring<WarmRecord>(JOURNAL_ENTRIES);

  purged(tokenId: string, selectors: Record<string, unknown>, report: PurgeReport, at = Date.now()): void {
    const tiers = report.tiers.map(({ tier, where, state, removed, fenced, detail }) => ({ tier, where, state, removed, fenced,
      detail: detail?.slice(0, 200) }));
    this.purgeRing.push({ at, tokenId, selectors, status: report.status, tiers });
  }

  warmed(tokenId: string, report: WarmReport, at = Date.now()): void {
    const byCache: Record<string, number> = {};
    for (const r of report.results) if (r.cache) byCache[r.cache] = (byCache[r.cache] ?? 0) + 1;
    const failures = report.results.filter((r) => r.status !== 200).slice(0, FAILURES_KEPT)
      .map((r) => ({ url: r.url.slice(0, 300), code: r.code }));
    this.warmRing.push({ at, tokenId, total: report.total, ok: report.ok, failed: report.failed, byCache, failures });
  }

  /** Newest first. */
  purges(): PurgeRecord[] {
    return this.purgeRing.toArray().reverse();
  }

  warms(): WarmRecord[] {
    return this.warmRing.toArray().reverse();
  }
}
