import { describe, expect, it } from 'vitest';
import { ERROR_LINES_PER_S, RequestLog } from './request-log.js';

const capture = () => {
  const lines: Array<Record<string, unknown>> = [];
  const push = (obj: object, msg?: string) => lines.push({ ...obj, msg });
  return { lines, logger: { debug: push, info: push, warn: push, error: push } };
};

describe('RequestLog', () => {
  it('logs one hit in round(1 / sample), and every miss, stale answer and error', () => {
    const { lines, logger } = capture();
    const log = new RequestLog(logger, 0.25);
    const decisions = Array.from({ length: 12 }, () => log.wants('HIT-MEMORY'));
    expect(decisions.filter(Boolean)).toHaveLength(3);
    expect([log.wants('MISS'), log.wants('STALE'), log.wants(undefined)]).toEqual([true, true, true]);
    log.write({ requestId: 'r1', form: 'legacy', host: 'a.example', cache: 'HIT-STORE', status: 200, bytes: 5, ms: 1.234,
      stages: { store: 0.987 } });
    expect(lines).toEqual([{ requestId: 'r1', form: 'legacy', host: 'a.example', cache: 'HIT-STORE', status: 200, bytes: 5,
      ms: 1.2, stages: { store: 1 }, sample: 0.25, msg: 'request' }]);
  });

  it('logs no hit at 0 and every hit at 1 (then without a sample field)', () => {
    const none = new RequestLog(capture().logger, 0);
    expect(Array.from({ length: 50 }, () => none.wants('HIT-MEMORY')).some(Boolean)).toBe(false);
    const { lines, logger } = capture();
    const all = new RequestLog(logger, 1);
    expect(Array.from({ length: 5 }, () => all.wants('HIT-STORE')).every(Boolean)).toBe(true);
    all.write({ requestId: 'r', form: 'query', cache: 'HIT-MEMORY', status: 200, bytes: 1, ms: 0.04 });
    expect(lines[0]).not.toHaveProperty('sample');
  });

  it('a flood of refusals of one code writes at most ERROR_LINES_PER_S lines a second; the next line counts the rest', () => {
    const { lines, logger } = capture();
    let now = 5_000;
    const log = new RequestLog(logger, 0.01, () => now);
    const refuse = (code: string) => log.write({ requestId: 'x', form: 'legacy', status: 429, bytes: 0, ms: 0.1, code });
    for (let i = 0; i < 5_000; i += 1) refuse('E_RATE_LIMITED');
    expect(lines).toHaveLength(ERROR_LINES_PER_S);
    expect(lines.some((l) => 'suppressed' in l)).toBe(false);
    refuse('E_SIGNATURE'); // another code has its own allowance: a flood of one hides no other failure
    expect(lines).toHaveLength(ERROR_LINES_PER_S + 1);
    now += 1_000;
    refuse('E_RATE_LIMITED');
    expect(lines.at(-1)).toMatchObject({ code: 'E_RATE_LIMITED', suppressed: 5_000 - ERROR_LINES_PER_S });
    refuse('E_RATE_LIMITED');
    expect(lines.at(-1)).not.toHaveProperty('suppressed');
    // Successful requests are never held back by it.
    for (let i = 0; i < 100; i += 1) log.write({ requestId: 'm', form: 'query', cache: 'MISS', status: 200, bytes: 1, ms: 1 });
    expect(lines).toHaveLength(ERROR_LINES_PER_S + 3 + 100);
  });
});
