/**
 * The loopback origin every contender fetches from (the test suite's real origin helper), serving the bench
 * dataset from memory with ordinary CDN headers, and counting GETs per exact URL (query included).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { startOrigin, type TestOrigin } from '../../test/helpers/origin.js';

export interface BenchOrigin {
  port: number;
  /** Base URL as imgrelay sees it (`http://origin.test`, resolved to the loopback port by IMGRELAY_RESOLVE). */
  imgrelayBase: string;
  /** Base URL as ipx sees it (ipx has no resolve override, so it gets the loopback address itself). */
  ipxBase: string;
  /** GET requests the origin received for this exact path + query. */
  gets(pathAndQuery: string): number;
  /** All requests (GET, HEAD…) for this exact path + query. */
  requests(pathAndQuery: string): number;
  totalGets(): number;
  close(): Promise<void>;
}

export const ORIGIN_HOST = 'origin.test';

export async function startBenchOrigin(root: string, files: readonly string[]): Promise<BenchOrigin> {
  const origin: TestOrigin = await startOrigin();
  const lastModified = new Date(Date.now() - 86_400_000).toUTCString();
  for (const file of files) {
    origin.serve(`/${file}`, readFileSync(join(root, file)), 'image/jpeg',
      { 'cache-control': 'public, max-age=86400', 'last-modified': lastModified });
  }
  const isGet = (method: string) => method === 'GET';
  return {
    port: origin.port,
    imgrelayBase: `http://${ORIGIN_HOST}`,
    ipxBase: origin.url,
    gets: (pathAndQuery) => origin.requests.filter((r) => isGet(r.method) && r.url === pathAndQuery).length,
    requests: (pathAndQuery) => origin.requests.filter((r) => r.url === pathAndQuery).length,
    totalGets: () => origin.requests.filter((r) => isGet(r.method)).length,
    close: () => origin.close(),
  };
}
