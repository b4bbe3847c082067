/**
 * The purge fence (DESIGN.md "Cache": a purge is a fence). Work that may end in a save — a load, a revalidation, a
 * store read, a queued store write — takes a ticket when it STARTS; every save into memory, promotion from the
 * store and store write asks the fence whether a purge covering that source was recorded since the ticket. If so
 * the save is dropped (and counted): bytes produced from before a purge never become servable after it.
 *
 * Two clocks, two checks:
 * - On this instance the fence is exact: tickets carry a local sequence number, bumped by every purge this instance
 *   applies (its own, or another instance's read from the purge log), so no clock is involved.
 * - An entry read from the shared store may have been written by another instance whose write landed after the
 *   purge (it was queued or in flight there). Its `startedAt` (the writer's wall clock when its work began) is
 *   compared with the purge's time (the purging instance's wall clock): an entry whose work began before a purge
 *   covering it, or less than `skewMs` after, reads as a miss. So clocks may disagree by up to `skewMs` without an
 *   old entry slipping through; the price is that an entry built within `skewMs` after a purge is built once more.
 *
 * Marks are kept per source, per host, per prefix, per tag and one for `all` (a generation per selector), so a
 * check is a few map lookups, not a walk over every purge. Marks older than `retentionMs` are forgotten (no work
 * runs that long, and late store writes land within a store timeout); past `maxMarks` the oldest go and every ticket
 * older than them counts as fenced (over-fencing only costs a rebuild). Pure: no I/O, portable.
 */

/** What a purge covers (the admin's canonical selectors, structurally). */
export interface FenceSelectors {
  sources: readonly string[];
  hosts: readonly string[];
  prefixes: readonly string[];
  tags: readonly string[];
  all: boolean;
}

/** Taken when work starts. */
export interface Ticket {
  /** The fence's sequence number then (local, exact). */
  readonly seq: number;
  /** Wall clock then (ms): written into stored entries as `startedAt` for the other instances' read check. */
  readonly at: number;
}

/** Where a save was refused. */
export type FencedAt = 'memory' | 'write' | 'promotion' | 'read';

export interface FenceStats {
  /** Purges recorded (own and from the log). */
  purges: number;
  /** Saves refused, by where. */
  fenced: Record<FencedAt, number>;
  /** Work in flight now (tickets taken and not yet released). */
  inFlight: number;
}

export interface PurgeFenceOptions {
  now?: () => number;
  /** Clock disagreement tolerated between instances (ms). */
  skewMs?: number;
  retentionMs?: number;
  maxMarks?: number;
}

interface Mark { seq: number; at: number; recordedAt: number }

const DAY_MS = 86_400_000;
/** Default tolerated clock skew: NTP keeps hosts within milliseconds; a second covers a badly synced one. */
export const DEFAULT_SKEW_MS = 1000;
const SCHEME_HOST = /^[a-z][a-z0-9+.-]*:\/\/([^/?#]+)/i;

export class PurgeFence {
  private seq = 0;
  private floorSeq = 0;
  private allMark: Mark | undefined;
  private readonly marks = { sources: new Map<string, Mark>(), hosts: new Map<string, Mark>(), tags: new Map<string, Mark>(),
    prefixes: new Map<string, Mark>() };
  private readonly stamps = new WeakMap<object, { ticket: Ticket; source: string }>();
  private readonly open = new Map<Ticket, string>();
  private readonly counts: FenceStats = { purges: 0, fenced: { memory: 0, write: 0, promotion: 0, read: 0 }, inFlight: 0 };
  private readonly now: () => number;
  private readonly skewMs: number;
  private readonly retentionMs: number;
  private readonly maxMarks: number;

  constructor(options: PurgeFenceOptions = {}) {
    this.now = options.now ?? Date.now;
    this.skewMs = options.skewMs ?? DEFAULT_SKEW_MS;
    this.retentionMs = options.retentionMs ?? DAY_MS;
    this.maxMarks = options.maxMarks ?? 100_000;
  }

  /** A ticket for work starting now. */
  ticket(): Ticket {
    return { seq: this.seq, at: this.now() };
  }

  /** A ticket for work on `source` that the caller `release`s when it ends: counted in flight meanwhile. */
  begin(source: string): Ticket {
    const ticket = this.ticket();
    this.open.set(ticket, source);
    return ticket;
  }

  release(ticket: Ticket): void {
    this.open.delete(ticket);
  }

  /**
   * Records a purge; `at` is the purge's wall-clock time (the purging instance's, for one read from the log).
   * Returns how many works in flight it fences (matched by source; a tag-only purge cannot know them yet).
   */
  record(selectors: FenceSelectors, at = this.now(), matches?: (source: string) => boolean): number {
    const mark: Mark = { seq: ++this.seq, at, recordedAt: this.now() };
    this.counts.purges += 1;
    // Purges may be recorded out of order (the edge reads the log concurrently): each mark keeps the latest time.
    if (selectors.all) this.allMark = this.allMark && this.allMark.at > mark.at ? { ...mark, at: this.allMark.at } : mark;
    else {
      for (const source of selectors.sources) this.put(this.marks.sources, source, mark);
      for (const host of selectors.hosts) this.put(this.marks.hosts, host, mark);
      for (const prefix of selectors.prefixes) this.put(this.marks.prefixes, prefix, mark);
      for (const tag of selectors.tags) this.put(this.marks.tags, tag, mark);
    }
    this.prune();
    let fenced = 0;
    for (const source of this.open.values()) if (selectors.all || matches?.(source)) fenced += 1;
    return fenced;
  }

  /** Whether a purge covering `source` (or one of `tags`) was recorded on this instance since `ticket`. */
  fencedSince(ticket: Ticket, source: string, tags: readonly string[]): boolean {
    if (ticket.seq === this.seq) return false; // no purge at all since: the common case, one comparison
    if (ticket.seq < this.floorSeq) return true;
    return this.covering(source, tags, (mark) => mark.seq > ticket.seq);
  }

  /** Whether any purge at all was recorded since `ticket` (for saves that carry nothing to match a purge by). */
  purgedSince(ticket: Ticket): boolean {
    return ticket.seq !== this.seq;
  }

  /**
   * Whether an entry whose work began at `startedAt` (the writer's clock) precedes a purge covering it, within the
   * tolerated skew (by default; 0 for bytes this instance dated itself). For entries read from the shared store,
   * and for entries derived from older ones (a variant built from a source read before the purge).
   */
  predatesPurge(startedAt: number, source: string, tags: readonly string[], skewMs = this.skewMs): boolean {
    return this.covering(source, tags, (mark) => startedAt < mark.at + skewMs);
  }

  /** Remembers which work produced `entry`, so a later stage (the write-behind queue) can check it. */
  stamp(entry: object, ticket: Ticket, source: string): void {
    this.stamps.set(entry, { ticket, source });
  }

  /** False when `entry` was stamped by work that a purge since fences (counted at `where`). Unstamped ones pass. */
  admits(entry: { meta: { tags: readonly string[] } }, where?: FencedAt): boolean {
    const stamp = this.stamps.get(entry);
    if (!stamp || !this.fencedSince(stamp.ticket, stamp.source, entry.meta.tags)) return true;
    if (where) this.fenced(where);
    return false;
  }

  /** Counts a refused save. */
  fenced(where: FencedAt): void {
    this.counts.fenced[where] += 1;
  }

  stats(): FenceStats {
    return { purges: this.counts.purges, fenced: { ...this.counts.fenced }, inFlight: this.open.size };
  }

  private covering(source: string, tags: readonly string[], hit: (mark: Mark) => boolean): boolean {
    const { marks } = this;
    const check = (mark: Mark | undefined) => mark !== undefined && hit(mark);
    if (check(this.allMark) || check(marks.sources.get(source))) return true;
    for (const tag of tags) if (check(marks.tags.get(tag))) return true;
    if (marks.hosts.size > 0) {
      const host = SCHEME_HOST.exec(source)?.[1]?.toLowerCase();
      if (host && (check(marks.hosts.get(host)) || check(marks.hosts.get(host.replace(/:\d+$/, ''))))) return true;
    }
    for (const [prefix, mark] of marks.prefixes) if (hit(mark) && source.startsWith(prefix)) return true;
    return false;
  }

  /** Re-inserts so each map stays in recording order (oldest first) for pruning. */
  private put(map: Map<string, Mark>, key: string, mark: Mark): void {
    const old = map.get(key);
    map.delete(key);
    map.set(key, old && old.at > mark.at ? { ...mark, at: old.at } : mark);
  }

  private prune(): void {
    const expired = this.now() - this.retentionMs;
    for (const map of Object.values(this.marks)) {
      for (const [key, mark] of map) {
        if (mark.recordedAt >= expired && map.size <= this.maxMarks) break;
        map.delete(key);
        this.floorSeq = Math.max(this.floorSeq, mark.seq);
      }
    }
    if (this.allMark && this.allMark.recordedAt < expired) this.allMark = undefined;
  }
}
