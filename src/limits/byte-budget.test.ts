import { describe, expect, it } from 'vitest';
import { RelayError } from '../errors.js';
import { ByteBudget, OVERLOADED_RETRY_AFTER_S } from './byte-budget.js';

const MiB = 1024 * 1024;

function overloaded(run: () => unknown): RelayError {
  try {
    run();
  } catch (error) {
    if (error instanceof RelayError) return error;
    throw error;
  }
  throw new Error('expected E_OVERLOADED');
}

describe('ByteBudget', () => {
  it('grows a hold chunk by chunk and gives every byte back on release', () => {
    const budget = new ByteBudget(10 * MiB);
    const hold = budget.open();
    hold.cover(1 * MiB);
    hold.cover(3 * MiB);
    hold.cover(2 * MiB); // never shrinks: a smaller total is already covered
    expect(hold.bytes).toBe(3 * MiB);
    expect(budget.usedBytes).toBe(3 * MiB);
    hold.release();
    hold.release();
    expect(budget.usedBytes).toBe(0);
  });

  it('refuses a growth past the limit with 503 E_OVERLOADED and Retry-After, taking nothing', () => {
    const budget = new ByteBudget(10 * MiB);
    const first = budget.open();
    first.cover(8 * MiB);
    const second = budget.open();
    const error = overloaded(() => second.cover(3 * MiB));
    expect(error.code).toBe('E_OVERLOADED');
    expect(error.status).toBe(503);
    expect(error.retryAfter).toBe(OVERLOADED_RETRY_AFTER_S);
    expect(budget.usedBytes).toBe(8 * MiB);
    second.cover(2 * MiB); // what still fits is granted
    expect(budget.usedBytes).toBe(10 * MiB);
  });

  it('refuses a new miss outright once the budget is spent, and admits again after a release', () => {
    const budget = new ByteBudget(4 * MiB);
    const hold = budget.open();
    hold.cover(4 * MiB);
    expect(overloaded(() => budget.open()).code).toBe('E_OVERLOADED');
    hold.release();
    expect(() => budget.open()).not.toThrow();
    expect(budget.stats().refused).toBe(1);
  });

  it('lets write-behind take bytes only while they fit', () => {
    const budget = new ByteBudget(4 * MiB);
    expect(budget.tryTake(3 * MiB)).toBe(true);
    expect(budget.tryTake(2 * MiB)).toBe(false);
    budget.give(3 * MiB);
    expect(budget.tryTake(4 * MiB)).toBe(true);
    expect(budget.stats()).toEqual({ limitBytes: 4 * MiB, usedBytes: 4 * MiB, refused: 1 });
  });

  it('a release after the hold was refused growth gives back only what it held', () => {
    const budget = new ByteBudget(4 * MiB);
    const hold = budget.open();
    hold.cover(1 * MiB);
    overloaded(() => hold.cover(5 * MiB));
    hold.release();
    expect(budget.usedBytes).toBe(0);
  });

  it('with a limit of 0 counts but never refuses', () => {
    const budget = new ByteBudget(0);
    const hold = budget.open();
    hold.cover(100 * MiB);
    expect(budget.usedBytes).toBe(100 * MiB);
    expect(budget.tryTake(1e12)).toBe(true);
  });
});
