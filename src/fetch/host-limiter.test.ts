import { describe, expect, it } from 'vitest';
import { createHostLimiters } from './host-limiter.js';

const never = new AbortController().signal;

function deferred() {
  let release!: () => void;
  const promise = new Promise<void>((resolve) => { release = resolve; });
  return { promise, release };
}

describe('createHostLimiters', () => {
  it('runs at most N tasks per host at once, hosts independently', async () => {
    const limiters = createHostLimiters(2);
    let running = 0;
    let peak = 0;
    const gate = deferred();
    const task = async () => {
      peak = Math.max(peak, ++running);
      await gate.promise;
      running--;
    };
    const all = [...Array(5)].map(() => limiters.run('a.com', never, task));
    const other = limiters.run('b.com', never, async () => 'b');
    expect(await other).toBe('b');
    gate.release();
    await Promise.all(all);
    expect(peak).toBe(2);
  });

  it('drops a host limiter once its last task has settled, success or failure', async () => {
    const limiters = createHostLimiters(1);
    await limiters.run('a.com', never, async () => 1);
    await limiters.run('b.com', never, async () => { throw new Error('boom'); }).catch(() => {});
    await new Promise((resolve) => setImmediate(resolve));
    expect(limiters.size()).toBe(0);
  });

  it('rejects a queued task as soon as its signal aborts, without running it', async () => {
    const limiters = createHostLimiters(1);
    const gate = deferred();
    const first = limiters.run('a.com', never, () => gate.promise);
    const controller = new AbortController();
    let ran = false;
    const queued = limiters.run('a.com', controller.signal, async () => { ran = true; });
    controller.abort(new Error('deadline'));
    await expect(queued).rejects.toThrow('deadline');
    gate.release();
    await first;
    await new Promise((resolve) => setImmediate(resolve));
    expect(ran).toBe(false);
    expect(limiters.size()).toBe(0);
  });
});
