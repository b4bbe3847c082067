/**
 * The container image as an operator runs it (issue #17 item 3): built from the repository's Containerfile with
 * podman, run with --init, a named volume on the cache dir and the port published on loopback; it relays and resizes
 * from an origin on the host, keeps its cache across a new container on the same volume, passes its HEALTHCHECK,
 * runs as non-root without devDependencies, and drains on SIGTERM within the grace period.
 *
 * Needs podman and the local base image: `bash .ci/container-base.sh` first (`npm run test:container` in .ci/run).
 * Not in `npm test`: the first build takes minutes (vitest.container.config.ts).
 */
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startOrigin, type TestOrigin } from '../helpers/origin.js';
import { fixture } from '../helpers/images.js';
import { eventually } from '../helpers/admin.js';
import {
  BASE_IMAGE, HOST_LOOPBACK_FROM_CONTAINER, REPO, buildImage, inspect, podman, podmanOk, runContainer, stopContainer,
  waitForHealthz,
} from './podman.js';

const SUFFIX = randomBytes(4).toString('hex');
const VOLUME = `imgrelay-test-cache-${SUFFIX}`;
const FIRST = `imgrelay-test-a-${SUFFIX}`;
const SECOND = `imgrelay-test-b-${SUFFIX}`;
/** The drain: readiness fails for DRAIN_DELAY, then in-flight work and queued store writes get SHUTDOWN_TIMEOUT. */
const DRAIN_DELAY_MS = 1000;
const SHUTDOWN_TIMEOUT_MS = 5000;
/** `podman stop -t`: SIGKILL (exit 137) after this; a drain that ends by itself exits 0 before it. */
const STOP_GRACE_S = 20;
/** Longer than the drain delay, well inside the shutdown timeout. */
const SLOW_ORIGIN_MS = 2500;
const PHOTO = fixture('exif-orientation-6.jpg');
const RESIZED = '/?url=http://origin.test/photo.jpg&w=50&output=webp';

let origin: TestOrigin;

function serviceEnv(): Record<string, string> {
  return {
    // The origin is on the host's loopback, which the container sees as 10.0.2.2 (slirp4netns): a private address,
    // allowed here only, and reached through a name on port 80 so the default IMGRELAY_ALLOWED_PORTS hold.
    IMGRELAY_ALLOW_PRIVATE_NETWORKS: `${HOST_LOOPBACK_FROM_CONTAINER}/32`,
    IMGRELAY_RESOLVE: `origin.test:80:${HOST_LOOPBACK_FROM_CONTAINER}:${origin.port}`,
    IMGRELAY_DRAIN_DELAY_MS: String(DRAIN_DELAY_MS),
    IMGRELAY_SHUTDOWN_TIMEOUT_MS: String(SHUTDOWN_TIMEOUT_MS),
  };
}

async function fetchResized(port: number): Promise<{ response: Response; body: Uint8Array }> {
  const response = await fetch(`http://127.0.0.1:${port}${RESIZED}`);
  return { response, body: new Uint8Array(await response.arrayBuffer()) };
}

beforeAll(async () => {
  const base = await podman(['image', 'exists', BASE_IMAGE]);
  if (base.code !== 0) throw new Error(`no ${BASE_IMAGE}: run \`bash .ci/container-base.sh\` first`);
  await buildImage();
  origin = await startOrigin();
  origin.serve('/photo.jpg', PHOTO, 'image/jpeg');
  // Answers only after the SIGTERM has been sent, so the drain has a request in flight to finish.
  origin.route('/slow.jpg', async (_req, res) => {
    await new Promise((resolve) => setTimeout(resolve, SLOW_ORIGIN_MS));
    res.writeHead(200, { 'content-type': 'image/jpeg', 'content-length': PHOTO.byteLength }).end(PHOTO);
  });
  await podmanOk(['volume', 'create', VOLUME]);
}, 25 * 60_000);

afterAll(async () => {
  await podman(['rm', '--force', '--time', '0', FIRST, SECOND]);
  await podman(['volume', 'rm', '--force', VOLUME]);
  await origin?.close();
});

describe('container image', () => {
  let resized: Uint8Array;

  it('relays and resizes an image from an origin on the host, with sharp working inside the image', async () => {
    const port = await runContainer({ name: FIRST, volume: VOLUME, env: serviceEnv() });
    await waitForHealthz(port, 30_000);
    const { response, body } = await fetchResized(port);
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toBe('image/webp');
    expect(response.headers.get('x-cache')).toBe('MISS');
    const out = await sharp(body).metadata();
    const source = await sharp(PHOTO).metadata();
    // EXIF orientation 6 turns the stored landscape into portrait: the resize is of the upright image.
    expect(source.orientation).toBe(6);
    expect(out).toMatchObject({ format: 'webp', width: 50, height: Math.round((50 * source.width) / source.height) });
    expect(origin.hits('/photo.jpg')).toBe(1);
    resized = body;
  });

  it('passes its HEALTHCHECK (node probing /healthz; slim images have no curl)', async () => {
    const check = await podman(['healthcheck', 'run', FIRST]);
    expect(check.code, check.stderr).toBe(0);
    expect(await inspect(FIRST, '{{.State.Health.Status}}')).toBe('healthy');
  });

  it('runs as a non-root user, from compiled JavaScript, without devDependencies or sources', async () => {
    expect(await podmanOk(['exec', FIRST, 'id', '-u'])).toBe('10001');
    const pkg = JSON.parse(readFileSync(`${REPO}package.json`, 'utf8')) as {
      dependencies: Record<string, string>; devDependencies: Record<string, string>;
    };
    const devOnly = [...new Set([...Object.keys(pkg.devDependencies), 'typescript', 'tsx', 'vitest'])]
      .filter((name) => !(name in pkg.dependencies));
    expect(devOnly).toEqual(expect.arrayContaining(['typescript', 'vitest']));
    const present = await podmanOk(['exec', FIRST, 'node', '-e', `const fs = require('node:fs');
      console.log(JSON.stringify(${JSON.stringify(devOnly)}.filter((name) => fs.existsSync('node_modules/' + name))))`]);
    expect(JSON.parse(present)).toEqual([]);
    expect(await podmanOk(['exec', FIRST, 'ls', '/app'])).toBe(['bin', 'dist', 'node_modules', 'package.json'].join('\n'));
  });

  it('runs the imgrelay CLI (compiled, no tsx) inside the image', async () => {
    const help = await podman(['exec', FIRST, 'node', 'bin/imgrelay.js', '--help']);
    expect(help.code, help.stderr).toBe(0);
    expect(help.stdout).toContain('imgrelay purge <url');
  });

  it('the service is node itself, a direct child of --init (SIGTERM reaches it), under jemalloc by default', async () => {
    const found = JSON.parse(await podmanOk(['exec', FIRST, 'node', '-e', `const fs = require('node:fs');
      const pid = fs.readdirSync('/proc').find((p) => /^\\d+$/.test(p) && p !== String(process.pid)
        && fs.readFileSync('/proc/' + p + '/cmdline', 'utf8').includes('dist/node/node.js'));
      const stat = fs.readFileSync('/proc/' + pid + '/stat', 'utf8');
      console.log(JSON.stringify({
        argv: fs.readFileSync('/proc/' + pid + '/cmdline', 'utf8').split('\\0').filter(Boolean),
        parent: Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]),
        jemalloc: fs.readFileSync('/proc/' + pid + '/maps', 'utf8').includes('libjemalloc.so.2'),
      }))`])) as { argv: string[]; parent: number; jemalloc: boolean };
    // exec in bin/start.sh: no shell or npm between the init and node to swallow the signal.
    expect(found).toEqual({ argv: ['node', 'dist/node/node.js'], parent: 1, jemalloc: true });
  });

  it('drains on SIGTERM: the request in flight completes, then it exits 0 within the grace period (not SIGKILLed)', async () => {
    const port = Number((await podmanOk(['port', FIRST, '8080/tcp'])).split(':').pop());
    const inFlight = fetch(`http://127.0.0.1:${port}/?url=http://origin.test/slow.jpg&w=40&output=webp`);
    expect(await eventually(async () => origin.hits('/slow.jpg') === 1, 10_000)).toBe(true);
    const stopped = await stopContainer(FIRST, STOP_GRACE_S);
    const response = await inFlight;
    expect(response.status).toBe(200);
    expect((await sharp(new Uint8Array(await response.arrayBuffer())).metadata()).width).toBe(40);
    expect(stopped.exitCode).toBe(0);
    expect(stopped.ms).toBeLessThan(STOP_GRACE_S * 1000);
    const logs = await podman(['logs', FIRST]);
    expect(logs.stdout + logs.stderr).toContain('SIGTERM received, draining');
  });

  it('a new container on the same volume serves the image from the store (HIT-STORE), no origin fetch', async () => {
    const port = await runContainer({ name: SECOND, volume: VOLUME, env: serviceEnv() });
    await waitForHealthz(port, 30_000);
    const { response, body } = await fetchResized(port);
    expect(response.status).toBe(200);
    expect(response.headers.get('x-cache')).toBe('HIT-STORE');
    expect(Buffer.from(body).equals(Buffer.from(resized))).toBe(true);
    expect(origin.hits('/photo.jpg')).toBe(1);
    const stopped = await stopContainer(SECOND, STOP_GRACE_S);
    expect(stopped.exitCode).toBe(0);
    expect(stopped.ms).toBeLessThan(STOP_GRACE_S * 1000);
  });
});
