import { describe, expect, it } from 'vitest';
import { FairQueue } from './fair-queue.js';

const job = (client: string, name: string) => ({ client, name });

describe('FairQueue', () => {
  it('serves clients in turn, each in its own arrival order', () => {
    const queue = new FairQueue<ReturnType<typeof job>>();
    for (const j of [job('a', 'a1'), job('a', 'a2'), job('a', 'a3'), job('b', 'b1'), job('c', 'c1'), job('b', 'b2')]) queue.add(j);
    const order: string[] = [];
    for (let next = queue.take(() => true); next; next = queue.take(() => true)) order.push(next.name);
    expect(order).toEqual(['a1', 'b1', 'c1', 'a2', 'b2', 'a3']);
    expect(queue.size).toBe(0);
  });

  it('takes the first job a predicate accepts, and removes a job that leaves early', () => {
    const queue = new FairQueue<ReturnType<typeof job>>();
    const leaving = job('a', 'a2');
    for (const j of [job('a', 'a1'), leaving, job('b', 'b1')]) queue.add(j);
    expect(queue.remove(leaving)).toBe(true);
    expect(queue.remove(leaving)).toBe(false);
    expect(queue.take((j) => j.name.startsWith('b'))?.name).toBe('b1');
    expect(queue.size).toBe(1);
  });
});
