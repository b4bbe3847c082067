import { describe, expect, it } from 'vitest';
import { SingleFlight } from './single-flight.js';

/** Work that records whether its signal was aborted and settles only when the test says so. */
function controllableWork() {
  let finish!: (value: string) => void;
  const state = { runs: 0, aborted: false };
  const work = (signal: AbortSignal) => {
    state.runs++;
    signal.addEventListener('abort', () => { state.aborted = true; });
    return new Promise<string>((resolve) => { finish = resolve; });
  };
  return { work, state, finish: (v: string) => finish(v) };
}

describe('SingleFlight', () => {
  it('runs concurrent calls for one key once', async () => {
    const flights = new SingleFlight<string>();
    const { work, state, finish } = controllableWork();
    const a = flights.run('k', work);
    const b = flights.run('k', work);
    expect(b.joined).toBe(true);
    finish('done');
    expect(await Promise.all([a.promise, b.promise])).toEqual(['done', 'done']);
    expect(state.runs).toBe(1);
    expect(flights.size).toBe(0);
  });

  it('one waiter aborting leaves the work running for the others', async () => {
    const flights = new SingleFlight<string>();
    const { work, state, finish } = controllableWork();
    const leaving = new AbortController();
    const a = flights.run('k', work, leaving.signal);
    const b = flights.run('k', work, new AbortController().signal);
    leaving.abort();
    await expect(a.promise).rejects.toMatchObject({ name: 'AbortError' });
    expect(state.aborted).toBe(false);
    finish('done');
    expect(await b.promise).toBe('done');
  });

  it('aborts the work when every waiter aborted: each waiter is rejected with its AbortError at once', async () => {
    const flights = new SingleFlight<string>();
    const first = controllableWork();
    const one = new AbortController();
    const two = new AbortController();
    const a = flights.run('k', first.work, one.signal);
    const b = flights.run('k', first.work, two.signal);
    one.abort();
    expect(first.state.aborted).toBe(false); // another request still waits
    two.abort();
    await expect(a.promise).rejects.toMatchObject({ name: 'AbortError' });
    await expect(b.promise).rejects.toMatchObject({ name: 'AbortError' });
    expect(first.state.aborted).toBe(true);
  });

  it('a work already past cancelling (it ignores the abort) is shared by the next caller, never run twice', async () => {
    const flights = new SingleFlight<string>();
    const running = controllableWork(); // like a transform libvips is running: the abort does not stop it
    const leaving = new AbortController();
    void flights.run('k', running.work, leaving.signal).promise.catch(() => {});
    leaving.abort();
    expect(running.state.aborted).toBe(true);
    const next = flights.run('k', running.work);
    expect(next.joined).toBe(true);
    running.finish('done');
    expect(await next.promise).toBe('done');
    expect(running.state.runs).toBe(1);
    expect(flights.size).toBe(0);
  });

  it('a work that honoured the abort (it rejected) is started afresh for the next caller', async () => {
    const flights = new SingleFlight<string>();
    let runs = 0;
    const work = (signal: AbortSignal) => new Promise<string>((resolve, reject) => {
      runs++;
      const run = runs;
      signal.addEventListener('abort', () => reject(signal.reason));
      if (run > 1) setTimeout(() => resolve(`run ${run}`), 1);
    });
    const leaving = new AbortController();
    void flights.run('k', work, leaving.signal).promise.catch(() => {});
    leaving.abort();
    const next = flights.run('k', work);
    expect(await next.promise).toBe('run 2');
    expect(runs).toBe(2);
    expect(flights.size).toBe(0);
  });

  it('a caller without a signal keeps the work alive whoever else leaves', async () => {
    const flights = new SingleFlight<string>();
    const { work, state, finish } = controllableWork();
    const leaving = new AbortController();
    const patient = flights.run('k', work);
    void flights.run('k', work, leaving.signal).promise.catch(() => {});
    leaving.abort();
    expect(state.aborted).toBe(false);
    finish('done');
    expect(await patient.promise).toBe('done');
  });
});
