/** The DNS admission gate: per-zone and global slots, released at the caller's deadline, zones forgotten when idle. */
import { describe, expect, it } from 'vitest';
import { LookupGate, lookupZone } from './dns-gate.js';

const never = () => new Promise<never>(() => {});

describe('lookupZone', () => {
  it('groups names by registrable domain (two labels, three under a shared ccTLD second level)', () => {
    expect(['a.b.hole.example', 'hole.example', 'x.img.bbc.co.uk', 'cdn.example.com', 'localhost'].map(lookupZone))
      .toEqual(['hole.example', 'hole.example', 'bbc.co.uk', 'example.com', 'localhost']);
  });
});

describe('LookupGate', () => {
  it('lets one zone take only its own slots: another zone runs while it has more waiting', async () => {
    const gate = new LookupGate(4, 2);
    const deadline = AbortSignal.timeout(2000);
    let started = 0;
    const hung = Array.from({ length: 6 }, () => gate.run('hole.example', deadline, () => { started++; return never(); })
      .catch((e: unknown) => e));
    expect(await gate.run('other.example', deadline, async () => 'ran')).toBe('ran');
    expect(started).toBe(2);
    await Promise.all(hung);
  });

  it('frees a slot at the caller deadline even though the work never ends, and forgets idle zones', async () => {
    const gate = new LookupGate(1, 1);
    const stuck = gate.run('a.example', AbortSignal.timeout(100), never);
    await expect(stuck).rejects.toMatchObject({ name: 'TimeoutError' });
    expect(await gate.run('b.example', AbortSignal.timeout(2000), async () => 'next')).toBe('next');
    expect(gate.zoneCount).toBe(0);
  });

  it('drops a queued caller whose deadline passes without ever running its work', async () => {
    const gate = new LookupGate(1, 1);
    const holder = gate.run('a.example', AbortSignal.timeout(300), never).catch(() => 'done');
    let ran = false;
    await expect(gate.run('b.example', AbortSignal.timeout(50), async () => { ran = true; })).rejects.toBeDefined();
    expect(ran).toBe(false);
    await holder;
    expect(gate.zoneCount).toBe(0);
  });
});
