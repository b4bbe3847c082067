import { describe, expect, it } from 'vitest';
import { RequestLog } from './request-log.js';

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
});
