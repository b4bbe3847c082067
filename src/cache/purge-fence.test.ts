import { describe, expect, it } from 'vitest';
import { PurgeFence } from './purge-fence.js';

const NONE = { sources: [], hosts: [], prefixes: [], tags: [], all: false };
const A = 'http://a.example/2021/x.png';
const B = 'http://b.example:8080/y.png';

describe('PurgeFence', () => {
  it('fences work that began before a purge covering its source, by every kind of selector', () => {
    const cases = [{ sources: [A] }, { hosts: ['a.example'] }, { prefixes: ['http://a.example/2021/'] }, { tags: ['t1'] },
      { all: true }];
    for (const selectors of cases) {
      const fence = new PurgeFence();
      const before = fence.ticket();
      fence.record({ ...NONE, ...selectors });
      expect(fence.fencedSince(before, A, ['t1']), JSON.stringify(selectors)).toBe(true);
      expect(fence.fencedSince(fence.ticket(), A, ['t1']), 'work begun after the purge').toBe(false);
    }
  });

  it('leaves work on other sources alone (hosts with and without port, prefixes, tags)', () => {
    const fence = new PurgeFence();
    const before = fence.ticket();
    fence.record({ ...NONE, sources: [A], hosts: ['c.example'], prefixes: ['http://a.example/2022/'], tags: ['t9'] });
    expect(fence.fencedSince(before, B, ['t1'])).toBe(false);
    expect(fence.fencedSince(before, 'http://a.example/2021/other.png', [])).toBe(false);
    const hostPurge = new PurgeFence();
    const t = hostPurge.ticket();
    hostPurge.record({ ...NONE, hosts: ['b.example'] });
    expect(hostPurge.fencedSince(t, B, [])).toBe(true);
  });

  it('judges entries from other instances by when their work began, within the tolerated skew', () => {
    let now = 10_000;
    const fence = new PurgeFence({ now: () => now, skewMs: 500 });
    fence.record({ ...NONE, sources: [A] }, 20_000);
    expect(fence.predatesPurge(19_000, A, [])).toBe(true);
    expect(fence.predatesPurge(20_400, A, []), 'within the skew: built again, never served old').toBe(true);
    expect(fence.predatesPurge(20_600, A, [])).toBe(false);
    expect(fence.predatesPurge(1_000, B, [])).toBe(false);
    now += 2 * 86_400_000;
    fence.record({ ...NONE, sources: [B] });
    expect(fence.predatesPurge(19_000, A, []), 'marks past the retention are forgotten').toBe(false);
  });

  it('keeps the latest purge per selector when purges are recorded out of order (the edge reads the log concurrently)', () => {
    for (const selectors of [{ sources: [A] }, { tags: ['t1'] }, { all: true }]) {
      const fence = new PurgeFence({ skewMs: 0 });
      fence.record({ ...NONE, ...selectors }, 20_000);
      fence.record({ ...NONE, ...selectors }, 10_000);
      expect(fence.predatesPurge(15_000, A, ['t1']), JSON.stringify(selectors)).toBe(true);
      expect(fence.predatesPurge(20_000, A, ['t1'])).toBe(false);
    }
  });

  it('checks stamped entries again later (the write-behind queue), and counts what it refuses', () => {
    const fence = new PurgeFence();
    const entry = { meta: { tags: ['t1'] } };
    fence.stamp(entry, fence.ticket(), A);
    expect(fence.admits(entry, 'write')).toBe(true);
    fence.record({ ...NONE, tags: ['t1'] });
    expect(fence.admits(entry, 'write')).toBe(false);
    expect(fence.admits({ meta: { tags: [] } })).toBe(true);
    expect(fence.stats().fenced.write).toBe(1);
  });

  it('counts the work in flight a purge fences, and stays bounded past maxMarks (older tickets fenced)', () => {
    const fence = new PurgeFence({ maxMarks: 3 });
    const working = fence.begin(A);
    fence.begin(B);
    expect(fence.record({ ...NONE, sources: [A] }, undefined, (s) => s === A)).toBe(1);
    fence.release(working);
    expect(fence.stats().inFlight).toBe(1);
    const old = fence.ticket();
    for (let i = 0; i < 10; i++) fence.record({ ...NONE, sources: [`http://x.example/${i}`] });
    expect((fence as unknown as { marks: { sources: Map<string, unknown> } }).marks.sources.size).toBeLessThanOrEqual(4);
    expect(fence.fencedSince(old, 'http://unrelated.example/', []), 'a pruned mark fences older tickets').toBe(true);
    expect(fence.fencedSince(fence.ticket(), 'http://unrelated.example/', [])).toBe(false);
  });
});
