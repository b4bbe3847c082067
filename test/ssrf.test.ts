/**
 * SSRF: one test per attack, named by its outcome. Each asserts the RelayError (403 E_SOURCE_FORBIDDEN with
 * the one uniform detail) AND that nothing was connected to: the canary listeners on 127.0.0.1, 127.0.0.2
 * and [::1] accepted no connection, and (where no legitimate hop exists) the process opened no TCP socket.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { SOURCE_FORBIDDEN_DETAIL } from '../src/fetch/source-policy.js';
import { buildFetcher, closeAll, recordingLogger, relayErrorOf, watchOutgoingSockets }
  from './helpers/fetch-harness.js';
import { startOrigin, type TestOrigin } from './helpers/origin.js';

let v4: TestOrigin; // 127.0.0.1: what "loopback" attacks would reach
let alt: TestOrigin; // 127.0.0.2: a different loopback address (Linux routes all of 127/8 to lo)
let v6: TestOrigin; // [::1]

beforeAll(async () => {
  [v4, alt, v6] = await Promise.all([startOrigin('127.0.0.1'), startOrigin('127.0.0.2'), startOrigin('::1')]);
  for (const canary of [v4, alt, v6]) canary.serve('/secret.png', 'secret', 'image/png');
});
afterAll(async () => Promise.all([v4, alt, v6].map((o) => o.close())));
afterEach(closeAll);

const canaryConnections = () => v4.connections + alt.connections + v6.connections;
/** Every canary port is an allowed port, so only the address/name/scheme check can be what refuses. */
const canaryPorts = () => ['80', '443', v4.port, alt.port, v6.port].join(',');

/** Fetches `url` with `env` and asserts the uniform 403 with no socket opened and no canary touched. */
async function expectRefusedWithoutConnection(url: string, env: Record<string, string> = {}, sockets = 0) {
  const before = canaryConnections();
  const logger = recordingLogger();
  const fetcher = buildFetcher({ IMGRELAY_ALLOWED_PORTS: canaryPorts(), ...env }, { logger });
  const watch = watchOutgoingSockets();
  try {
    const error = await relayErrorOf(fetcher.fetch({ url: new URL(url) }));
    expect({ code: error.code, status: error.status, detail: error.detail })
      .toEqual({ code: 'E_SOURCE_FORBIDDEN', status: 403, detail: SOURCE_FORBIDDEN_DETAIL });
  } finally {
    watch.stop();
  }
  expect(canaryConnections() - before).toBe(0);
  expect(watch.count()).toBe(sockets);
  // The precise reason is logged (never sent to the client).
  expect(logger.entries.some((e) => 'reason' in e.obj)).toBe(true);
}

describe('control: the canaries notice a real connection', () => {
  it('fetches from 127.0.0.1 when IMGRELAY_ALLOW_PRIVATE_NETWORKS allows it, and the canary counts it', async () => {
    const before = v4.connections;
    const fetcher = buildFetcher({ IMGRELAY_ALLOWED_PORTS: canaryPorts(), IMGRELAY_ALLOW_PRIVATE_NETWORKS: '127.0.0.0/8' });
    const watch = watchOutgoingSockets();
    const result = await fetcher.fetch({ url: new URL(`http://127.0.0.1:${v4.port}/secret.png`) }).finally(watch.stop);
    expect(result.notModified === false && new TextDecoder().decode(result.body)).toBe('secret');
    expect(v4.connections - before).toBe(1);
    expect(watch.count()).toBe(1);
  });
});

describe('IP-literal hosts (refused at parse time)', () => {
  it('refuses loopback 127.0.0.1 with 403 and no connection', async () => {
    await expectRefusedWithoutConnection(`http://127.0.0.1:${v4.port}/secret.png`);
  });
  it('refuses another loopback address 127.0.0.2 with 403 and no connection', async () => {
    await expectRefusedWithoutConnection(`http://127.0.0.2:${alt.port}/secret.png`);
  });
  it('refuses the unspecified address 0.0.0.0 (which Linux delivers locally) with 403 and no connection', async () => {
    await expectRefusedWithoutConnection(`http://0.0.0.0:${v4.port}/secret.png`);
  });
  it.each(['10.0.0.1', '172.16.5.4', '192.168.1.1'])('refuses RFC 1918 %s with 403 and no connection', async (ip) => {
    await expectRefusedWithoutConnection(`http://${ip}/secret.png`);
  });
  it('refuses the cloud metadata address 169.254.169.254 with 403 and no connection', async () => {
    await expectRefusedWithoutConnection('http://169.254.169.254/latest/meta-data/');
  });
  it('refuses carrier-grade NAT 100.64.0.1 with 403 and no connection', async () => {
    await expectRefusedWithoutConnection('http://100.64.0.1/secret.png');
  });
  it.each(['224.0.0.1', '255.255.255.255', '198.18.0.1', '240.0.0.1'])(
    'refuses multicast/broadcast/benchmarking/reserved %s with 403 and no connection', async (ip) => {
      await expectRefusedWithoutConnection(`http://${ip}/secret.png`);
    });
  it('refuses IPv6 loopback [::1] with 403 and no connection', async () => {
    await expectRefusedWithoutConnection(`http://[::1]:${v6.port}/secret.png`);
  });
  it('refuses an IPv6 unique local address [fd00::1] with 403 and no connection', async () => {
    await expectRefusedWithoutConnection('http://[fd00::1]/secret.png');
  });
  it('refuses an IPv6 link-local address [fe80::1] with 403 and no connection', async () => {
    await expectRefusedWithoutConnection('http://[fe80::1]/secret.png');
  });
  it('refuses v4-mapped loopback [::ffff:127.0.0.1] with 403 and no connection', async () => {
    await expectRefusedWithoutConnection(`http://[::ffff:127.0.0.1]:${v4.port}/secret.png`);
  });
  it('refuses NAT64-embedded loopback [64:ff9b::7f00:1] with 403 and no connection', async () => {
    await expectRefusedWithoutConnection(`http://[64:ff9b::7f00:1]:${v4.port}/secret.png`);
  });
  it('refuses 6to4-embedded loopback [2002:7f00:1::1] with 403 and no connection', async () => {
    await expectRefusedWithoutConnection('http://[2002:7f00:1::1]/secret.png');
  });
  it.each([
    ['decimal', '2130706433'], ['octal', '0177.0.0.1'], ['hex', '0x7f.0.0.1'], ['hex dword', '0x7f000001'],
    ['short form', '127.1'],
  ])('refuses the %s spelling of 127.0.0.1 (%s) with 403 and no connection', async (_name, spelling) => {
    await expectRefusedWithoutConnection(`http://${spelling}:${v4.port}/secret.png`);
  });
});

describe('names that are internal by definition (refused even with loopback allowed)', () => {
  const loopbackAllowed = { IMGRELAY_ALLOW_PRIVATE_NETWORKS: '127.0.0.0/8,::1/128' };
  it.each(['localhost', 'localhost.', 'LOCALHOST', 'images.localhost', 'printer.local', 'metadata.google.internal',
    'metadata.google.internal.', 'intranet'])('refuses %s with 403 and no connection', async (name) => {
    await expectRefusedWithoutConnection(`http://${name}:${v4.port}/secret.png`, loopbackAllowed);
  });
});

describe('DNS answers are checked at connect time', () => {
  it('refuses a public name resolving to 127.0.0.1 (IMGRELAY_RESOLVE) with 403 and no connection', async () => {
    await expectRefusedWithoutConnection('http://img.example.com/secret.png', {
      IMGRELAY_RESOLVE: `img.example.com:80:127.0.0.1:${v4.port}`,
    });
  });
  it('refuses a public name resolving to [::1] with 403 and no connection', async () => {
    await expectRefusedWithoutConnection('http://img.example.com/secret.png', {
      IMGRELAY_RESOLVE: `img.example.com:80:[::1]:${v6.port}`,
    });
  });
  it('refuses a public name resolving to v4-mapped ::ffff:127.0.0.1 with 403 and no connection', async () => {
    await expectRefusedWithoutConnection('http://img.example.com/secret.png', {
      IMGRELAY_RESOLVE: `img.example.com:80:[::ffff:127.0.0.1]:${v4.port}`,
    });
  });
  it('refuses a name resolving to 127.0.0.2 outside the allowed 127.0.0.1/32 with 403 and no connection', async () => {
    await expectRefusedWithoutConnection('http://img.example.com/secret.png', {
      IMGRELAY_RESOLVE: `img.example.com:80:127.0.0.2:${alt.port}`,
      IMGRELAY_ALLOW_PRIVATE_NETWORKS: '127.0.0.1/32',
    });
  });
});

describe('redirects are checked at every hop', () => {
  let start: TestOrigin;
  const allowStart = () => ({ IMGRELAY_ALLOW_PRIVATE_NETWORKS: '127.0.0.1/32',
    IMGRELAY_ALLOWED_PORTS: `${canaryPorts()},${start.port}` });
  const redirectTo = (location: string) => start.route('/go', (_req, res) => {
    res.writeHead(302, { location }).end();
  });
  beforeAll(async () => { start = await startOrigin('127.0.0.1'); });
  afterAll(async () => start.close());

  it('refuses a redirect from an allowed origin to private 127.0.0.2 with 403 and no connection to it', async () => {
    redirectTo(`http://127.0.0.2:${alt.port}/secret.png`);
    await expectRefusedWithoutConnection(`${start.url}/go`, allowStart(), 1);
    expect(start.hits('/go')).toBeGreaterThan(0);
  });
  it('refuses a redirect to a name resolving to 127.0.0.2 with 403 and no connection to it', async () => {
    redirectTo('http://img.example.com/secret.png');
    await expectRefusedWithoutConnection(`${start.url}/go`, {
      ...allowStart(), IMGRELAY_RESOLVE: `img.example.com:80:127.0.0.2:${alt.port}`,
    }, 1);
  });
  it('refuses a redirect to [::1] with 403 and no connection to it', async () => {
    redirectTo(`http://[::1]:${v6.port}/secret.png`);
    await expectRefusedWithoutConnection(`${start.url}/go`, allowStart(), 1);
  });
  it('refuses a redirect to localhost with 403 and no connection to it', async () => {
    redirectTo(`http://localhost:${alt.port}/secret.png`);
    await expectRefusedWithoutConnection(`${start.url}/go`, allowStart(), 1);
  });
  it('refuses a redirect to a file: URL with 403', async () => {
    redirectTo('file:///etc/passwd');
    await expectRefusedWithoutConnection(`${start.url}/go`, allowStart(), 1);
  });
});

describe('schemes, userinfo, ports and host lists', () => {
  const loopbackAllowed = () => ({ IMGRELAY_ALLOW_PRIVATE_NETWORKS: '127.0.0.0/8' });
  it.each(['file:///etc/passwd', 'ftp://127.0.0.1:PORT/secret.png', 'gopher://127.0.0.1:PORT/_INFO',
    'data:image/png;base64,iVBORw0KGgo=', 'ws://127.0.0.1:PORT/secret.png', 'javascript:alert(1)'])(
    'refuses the non-http URL %s with 403 and no connection', async (url) => {
      await expectRefusedWithoutConnection(url.replace('PORT', String(v4.port)), loopbackAllowed());
    });
  it('refuses userinfo (http://user:pass@host/) with 403 and no connection, even to an allowed address', async () => {
    await expectRefusedWithoutConnection(`http://user:pass@127.0.0.1:${v4.port}/secret.png`, loopbackAllowed());
  });
  it('refuses a port outside IMGRELAY_ALLOWED_PORTS with 403 and no connection, even to an allowed address',
    async () => {
      await expectRefusedWithoutConnection(`http://127.0.0.1:${v4.port}/secret.png`, {
        ...loopbackAllowed(), IMGRELAY_ALLOWED_PORTS: '80,443',
      });
    });
  it('refuses a host matching IMGRELAY_BLOCKED_HOSTS with 403 and no connection', async () => {
    await expectRefusedWithoutConnection('http://img.example.com/secret.png', {
      ...loopbackAllowed(), IMGRELAY_BLOCKED_HOSTS: '*.example.com',
      IMGRELAY_RESOLVE: `img.example.com:80:127.0.0.1:${v4.port}`,
    });
  });
  it('refuses a host outside IMGRELAY_ALLOWED_HOSTS with 403 and no connection', async () => {
    await expectRefusedWithoutConnection('http://img.example.com/secret.png', {
      ...loopbackAllowed(), IMGRELAY_ALLOWED_HOSTS: 'zkres*.myzaker.com',
      IMGRELAY_RESOLVE: `img.example.com:80:127.0.0.1:${v4.port}`,
    });
  });
});
