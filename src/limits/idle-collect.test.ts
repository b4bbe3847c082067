import { describe, expect, it } from 'vitest';
import { createIdleCollector } from './idle-collect.js';

const MiB = 1024 * 1024;

function harness(minBytes = 32 * MiB) {
  let activity = 0;
  let collected = 0;
  const collector = createIdleCollector({
    activity: () => activity, collect: () => { collected += 1; }, minBytes, everyMs: 1000,
    timers: { start: () => undefined, stop: () => {} },
  });
  return { collector, move: (bytes: number) => { activity += bytes; }, collected: () => collected };
}

describe('idle collector', () => {
  it('collects once after a burst of misses, when a whole period passed with none', () => {
    const { collector, move, collected } = harness();
    move(20 * MiB);
    expect(collector.tick()).toBe(false); // still moving
    move(20 * MiB);
    expect(collector.tick()).toBe(false);
    expect(collector.tick()).toBe(true); // quiet for one period after 40 MiB of misses
    expect(collector.tick()).toBe(false); // nothing new since: no second pause
    expect(collected()).toBe(1);
  });

  it('never collects for a trickle below the threshold, nor while misses keep moving', () => {
    const { collector, move, collected } = harness();
    move(5 * MiB);
    collector.tick();
    expect(collector.tick()).toBe(false);
    for (let i = 0; i < 20; i++) {
      move(10 * MiB);
      expect(collector.tick()).toBe(false);
    }
    expect(collector.tick()).toBe(true);
    expect(collected()).toBe(1);
  });

  it('does nothing in a process that only serves hits (the counter never moves)', () => {
    const { collector, collected } = harness(1);
    for (let i = 0; i < 10; i++) collector.tick();
    expect(collected()).toBe(0);
  });
});
