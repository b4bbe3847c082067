/**
 * A real HTTP origin on loopback for tests: routes are plain node:http handlers; every request is recorded
 * (method, url, headers) so tests can count origin hits and inspect what imgrelay sent upstream.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export type Handler = (req: IncomingMessage, res: ServerResponse) => void | Promise<void>;

export interface RecordedRequest {
  method: string;
  url: string;
  headers: IncomingMessage['headers'];
}

export interface TestOrigin {
  port: number;
  /** `http://127.0.0.1:<port>` */
  url: string;
  requests: RecordedRequest[];
  /** Number of TCP connections accepted (the canary count for SSRF tests). */
  connections: number;
  route(path: string, handler: Handler): void;
  /** Serves `body` with `contentType` (and extra headers) at `path`. */
  serve(path: string, body: Uint8Array | string, contentType: string, headers?: Record<string, string>): void;
  hits(path: string): number;
  close(): Promise<void>;
}

export async function startOrigin(host = '127.0.0.1'): Promise<TestOrigin> {
  const routes = new Map<string, Handler>();
  const requests: RecordedRequest[] = [];
  const server: Server = createServer((req, res) => {
    requests.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers });
    const path = (req.url ?? '/').split('?')[0];
    const handler = routes.get(req.url ?? '/') ?? routes.get(path);
    if (!handler) {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found');
      return;
    }
    Promise.resolve(handler(req, res)).catch((e) => res.destroy(e as Error));
  });
  const origin = {
    port: 0, url: '', requests, connections: 0,
    route: (path: string, handler: Handler) => void routes.set(path, handler),
    serve(path: string, body: Uint8Array | string, contentType: string, headers: Record<string, string> = {}) {
      routes.set(path, (_req, res) => {
        res.writeHead(200, { 'content-type': contentType, 'content-length': Buffer.byteLength(body), ...headers });
        res.end(body);
      });
    },
    hits: (path: string) => requests.filter((r) => r.url === path || r.url.split('?')[0] === path).length,
    close: () => new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    }),
  };
  server.on('connection', () => { origin.connections++; });
  await new Promise<void>((resolve) => server.listen(0, host, resolve));
  origin.port = (server.address() as AddressInfo).port;
  origin.url = `http://${host.includes(':') ? `[${host}]` : host}:${origin.port}`;
  return origin;
}
