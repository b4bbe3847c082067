import { describe, expect, it } from 'vitest';
import { duration, parseWrk } from './wrk.js';

const REPORT = `Running 2s test @ http://127.0.0.1:40000/
  1 threads and 32 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     2.95ms  528.41us  12.18ms   91.31%
    Req/Sec    10.95k   640.22    11.72k    80.00%
  Latency Distribution
     50%    2.83ms
     75%    3.03ms
     90%    3.37ms
     99%    4.89ms
  21784 requests in 2.00s, 1.13GB read
  Socket errors: connect 0, read 2, write 0, timeout 1
  Non-2xx or 3xx responses: 5
Requests/sec:  10877.13
Transfer/sec:    565.03MB
`;

describe('parseWrk', () => {
  it('reads throughput, percentiles and every kind of error from a wrk --latency report', () => {
    expect(parseWrk(REPORT)).toMatchObject({
      requests: 21784, rps: 10877.13, latencyP50Ms: 2.83, latencyP99Ms: 4.89, non2xx: 5, socketErrors: 3,
    });
  });

  it('reports no errors when wrk prints no error lines', () => {
    const clean = REPORT.replace(/ {2}Socket errors.*\n/, '').replace(/ {2}Non-2xx.*\n/, '');
    expect(parseWrk(clean)).toMatchObject({ non2xx: 0, socketErrors: 0 });
  });
});

describe('duration', () => {
  it('converts wrk units to milliseconds', () => {
    expect(duration('850.00us')).toBeCloseTo(0.85);
    expect(duration('1.50s')).toBe(1500);
    expect(duration(undefined)).toBeNaN();
  });
});
