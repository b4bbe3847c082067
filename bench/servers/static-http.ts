/**
 * The limits for cache hits: a bare node:http server answering every request with the same bytes and headers,
 * either from memory (BENCH_MODE=memory, the memory-hit limit) or by fs.readFile of a file on every request
 * (BENCH_MODE=file, the store-hit limit).
 */
import { readFile, readFileSync } from 'node:fs';
import { createServer, type OutgoingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';
import { failStartup, serveParent } from './ipc.js';

async function main(): Promise<void> {
  const file = required('BENCH_FILE');
  const headers = JSON.parse(process.env.BENCH_HEADERS ?? '{}') as OutgoingHttpHeaders;
  const fromMemory = process.env.BENCH_MODE !== 'file';
  const cached = fromMemory ? readFileSync(file) : undefined;
  const server = createServer((_req, res) => {
    const send = (body: Buffer) => {
      res.writeHead(200, { ...headers, 'content-length': body.length });
      res.end(body);
    };
    // The callback readFile: one threadpool read for a small file (fs/promises' readFile is slower on Node 20).
    if (cached) send(cached);
    else readFile(file, (error, body) => (error ? res.writeHead(500).end() : send(body)));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  serveParent({ port: (server.address() as AddressInfo).port }, {}, () => close(server));
}

function required(name: string): string {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is required`);
  return value;
}

function close(server: ReturnType<typeof createServer>): Promise<void> {
  server.closeAllConnections();
  return new Promise((resolve) => server.close(() => resolve()));
}

main().catch(failStartup);
