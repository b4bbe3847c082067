/**
 * The peer: ipx 3.1.1 as its docs wire it (createIPX + ipxHttpStorage + createIPXNodeServer), allowed to fetch
 * from the loopback origin only. Requests look like `/w_800&f_jpeg&q_80/http://127.0.0.1:<port>/a.jpg`.
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createIPX, createIPXNodeServer, ipxHttpStorage } from 'ipx';
import { failStartup, serveParent } from './ipc.js';

async function main(): Promise<void> {
  // Only absolute http(s) ids are requested, so the HTTP storage serves as the primary storage too.
  const http = ipxHttpStorage({ domains: ['127.0.0.1'] });
  const ipx = createIPX({ storage: http, httpStorage: http });
  const server = createServer(createIPXNodeServer(ipx));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  serveParent({ port: (server.address() as AddressInfo).port }, {}, () => new Promise((resolve) => {
    server.closeAllConnections();
    server.close(() => resolve());
  }));
}

main().catch(failStartup);
