import { describe, expect, it } from 'vitest';
import { checkIntervalMs, clientErrorProblem, noWriteProgress, rawProblem } from './node-server.js';
import { RelayError } from '../errors.js';

const parserError = (code: string, rawPacket?: string) => Object.assign(new Error(code), { code,
  rawPacket: rawPacket === undefined ? undefined : Buffer.from(rawPacket, 'latin1') });

describe('clientErrorProblem', () => {
  it('a request line that alone reaches the header limit is a URL too long (414)', () => {
    const packet = `GET /${'a'.repeat(2000)}`;
    expect(clientErrorProblem(parserError('HPE_HEADER_OVERFLOW', packet), 1024).code).toBe('E_URL_TOO_LONG');
    expect(clientErrorProblem(parserError('HPE_HEADER_OVERFLOW', `${packet} HTTP/1.1\r\n`), 1024).code).toBe('E_URL_TOO_LONG');
  });

  it('a short request line with large headers is headers too large (431), as is an overflow seen mid-stream', () => {
    const packet = `GET / HTTP/1.1\r\nX-Big: ${'b'.repeat(2000)}`;
    expect(clientErrorProblem(parserError('HPE_HEADER_OVERFLOW', packet), 1024).code).toBe('E_HEADERS_TOO_LARGE');
    expect(clientErrorProblem(parserError('HPE_HEADER_OVERFLOW', 'bbbbbbbb'), 1024).code).toBe('E_HEADERS_TOO_LARGE');
    expect(clientErrorProblem(parserError('HPE_HEADER_OVERFLOW'), 1024).status).toBe(431);
  });

  it('a deadline is 408 and anything else the parser refuses is 400', () => {
    expect(clientErrorProblem(parserError('ERR_HTTP_REQUEST_TIMEOUT'), 1024).status).toBe(408);
    expect(clientErrorProblem(parserError('HPE_INVALID_METHOD', 'XX / HTTP/1.1'), 1024).code).toBe('E_BAD_REQUEST');
    expect(clientErrorProblem(parserError('HPE_INVALID_CHUNK_SIZE'), 1024).status).toBe(400);
  });
});

describe('rawProblem', () => {
  it('is a whole HTTP/1.1 problem+json response that closes the connection, with an exact Content-Length', () => {
    const raw = rawProblem(new RelayError('E_OVERLOADED', 'Too many open connections', { retryAfter: 1 }));
    const [head, body] = raw.split('\r\n\r\n');
    expect(head.split('\r\n')[0]).toBe('HTTP/1.1 503 Service Unavailable');
    expect(head).toContain('content-type: application/problem+json\r\n');
    expect(head).toContain('cache-control: no-store\r\n');
    expect(head).toContain('retry-after: 1\r\n');
    expect(head).toMatch(/connection: close$/);
    expect(head).toContain(`content-length: ${Buffer.byteLength(body)}`);
    expect(JSON.parse(body)).toMatchObject({ status: 503, code: 'E_OVERLOADED', detail: 'Too many open connections' });
  });

  it('leaves out the CORS header for a same-origin listener (admin)', () => {
    const error = new RelayError('E_BAD_REQUEST', 'Malformed HTTP request');
    expect(rawProblem(error)).toContain('access-control-allow-origin: *\r\n');
    expect(rawProblem(error, true)).not.toContain('access-control-allow-origin');
  });
});

describe('checkIntervalMs', () => {
  it('checks header deadlines at most 1 s apart, and a quarter of short deadlines', () => {
    const limits = { headersTimeoutMs: 10_000, requestTimeoutMs: 30_000, keepAliveTimeoutMs: 65_000, writeTimeoutMs: 30_000,
      maxConnections: 1024, maxHeaderBytes: 16_384 };
    expect(checkIntervalMs(limits)).toBe(1000);
    expect(checkIntervalMs({ ...limits, headersTimeoutMs: 1000 })).toBe(250);
    expect(checkIntervalMs({ ...limits, headersTimeoutMs: 100 })).toBe(50);
  });
});

describe('noWriteProgress', () => {
  const before = { buffered: 65_536, queued: 4_000_000 };

  it('a backlog that did not shrink, or only grew, is no progress (a stalled reader)', () => {
    expect(noWriteProgress(before, { ...before })).toBe(true);
    expect(noWriteProgress(before, { buffered: 131_072, queued: 4_000_000 })).toBe(true);
  });

  it('a partial write (libuv queue shrank) or a completed chunk (stream buffer shrank) is progress', () => {
    expect(noWriteProgress(before, { buffered: 65_536, queued: 3_900_000 })).toBe(false);
    expect(noWriteProgress(before, { buffered: 0, queued: 4_100_000 })).toBe(false);
  });
});
