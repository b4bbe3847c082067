/**
 * Child process for test/loops.test.ts, started with NODE_EXTRA_CA_CERTS trusting the test certificate (the trust
 * store is read at process start, so this cannot run inside the test runner): the Node guarded fetcher fetches
 * `https://i.pximg.net/…` from a real TLS origin on loopback (IMGRELAY_RESOLVE), which answers either an image
 * (the control: TLS is trusted) or a redirect to plain `http://i.pximg.net/…`, served by a plain origin that counts
 * its requests. Prints one JSON line.
 */
import { createServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { parseConfig } from '../../src/config.js';
import { RelayError } from '../../src/errors.js';
import { createGuardedFetcher } from '../../src/fetch/guarded-fetcher.js';
import { silentLogger } from '../../src/logger.js';
import { TEST_TLS_CERT, TEST_TLS_KEY } from './fetch-tls-cert.js';
import { startOrigin } from './origin.js';

async function main(): Promise<void> {
  const plain = await startOrigin();
  plain.serve('/plain.png', 'plain', 'image/png');
  const secure = createServer({ key: TEST_TLS_KEY, cert: TEST_TLS_CERT }, (req, res) => {
    if (req.url === '/image.png') res.writeHead(200, { 'content-type': 'image/png' }).end('secure');
    else res.writeHead(302, { location: 'http://i.pximg.net/plain.png' }).end();
  });
  await new Promise<void>((resolve) => secure.listen(0, '127.0.0.1', resolve));
  const securePort = (secure.address() as AddressInfo).port;
  const fetcher = createGuardedFetcher(parseConfig({
    IMGRELAY_STORE: 'none', IMGRELAY_ALLOW_PRIVATE_NETWORKS: '127.0.0.0/8',
    IMGRELAY_RESOLVE: `i.pximg.net:443:127.0.0.1:${securePort},i.pximg.net:80:127.0.0.1:${plain.port}`,
  }), { logger: silentLogger });
  const outcome = (url: string) => fetcher.fetch({ url: new URL(url) }).then(
    (r) => (r.notModified ? 'not modified' : `200 ${new TextDecoder().decode(r.body)}`),
    (e: unknown) => (e instanceof RelayError ? `${e.status} ${e.code}` : String(e)));
  const control = await outcome('https://i.pximg.net/image.png');
  const downgrade = await outcome('https://i.pximg.net/redirect.png');
  process.stdout.write(`${JSON.stringify({ control, downgrade, plainRequests: plain.requests.length })}\n`);
  await fetcher.close?.();
  secure.close();
  await plain.close();
}

main().catch((error) => {
  process.stderr.write(String(error instanceof Error ? error.stack : error));
  process.exit(1);
});
