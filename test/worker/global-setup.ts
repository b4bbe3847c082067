/**
 * Starts the lab for the workerd suite (see lab.ts), in Node: a real image origin on loopback serving the test
 * fixtures, and the real Node imgrelay that the edge forwards transforms to.
 */
import type { TestProject } from 'vitest/node';
import { type Handler, startOrigin } from '../helpers/origin.js';
import { bootImgrelay, zakerAt } from '../helpers/imgrelay.js';
import { LAB_PRESETS } from './lab-hosts.js';
import { fixture } from '../helpers/images.js';
import { IMAGE_HOST } from './lab-hosts.js';

const BIG_BYTES = 25 * 1024 * 1024 - 4096;
const BIG_CHUNK = 1024 * 1024;

/** A JPEG-looking body of BIG_BYTES (sniffed as JPEG; the relay never decodes it), one MiB every 40 ms. */
function bigBody(declared: boolean): Handler {
  return (_req, res) => {
    res.writeHead(200, { 'content-type': 'image/jpeg', ...(declared ? { 'content-length': String(BIG_BYTES) } : {}) });
    const chunk = Buffer.alloc(BIG_CHUNK);
    chunk.set([0xff, 0xd8, 0xff, 0xe0]);
    let sent = 0;
    const next = () => {
      if (res.destroyed) return;
      const size = Math.min(BIG_CHUNK, BIG_BYTES - sent);
      res.write(sent === 0 ? chunk.subarray(0, size) : Buffer.alloc(size));
      sent += size;
      if (sent < BIG_BYTES) setTimeout(next, 40).unref();
      else res.end();
    };
    next();
  };
}

export default async function setup(project: TestProject) {
  const origin = await startOrigin();
  origin.serve('/202107/abc_1024.jpg', fixture('photo-wood.jpg'), 'image/jpeg', { 'cache-control': 'max-age=3600' });
  origin.serve('/photo.jpg', fixture('photo-ladybird.jpg'), 'image/jpeg');
  origin.serve('/cached.jpg', fixture('progressive.jpg'), 'image/jpeg');
  origin.serve('/forwarded.jpg', fixture('photo-ladybird.jpg'), 'image/jpeg');
  origin.serve('/logo.svg', fixture('logo.svg'), 'image/svg+xml');
  origin.serve('/page.html', '<!doctype html><p>not an image</p>', 'image/jpeg');
  origin.route('/gone.jpg', (_req, res) => void res.writeHead(410).end());
  origin.route('/broken.jpg', (_req, res) => void res.writeHead(503).end('down'));
  origin.route('/to-metadata.jpg', (_req, res) => void res.writeHead(302, { location: 'http://169.254.169.254/latest' }).end());
  origin.route('/to-plain-http.jpg', (_req, res) => void res.writeHead(302, { location: `http://${IMAGE_HOST}/plain-target.jpg` }).end());
  origin.serve('/plain-target.jpg', fixture('photo-ladybird.jpg'), 'image/jpeg');
  origin.serve('/through-imgrelay.jpg', fixture('photo-ladybird.jpg'), 'image/jpeg', { via: '1.1 imgrelay' });
  origin.route('/slow.jpg', (_req, res) => void setTimeout(() => res.writeHead(200).end('late'), 5000).unref());
  // An image replaced at the origin, per `case` (edge-purge.test.ts): the wood photo until `/__replace?case=…`, then
  // the ladybird; `/slow-replaced.jpg` answers the same way 1.5 s late (a load in flight across a purge).
  const replaced = new Set<string>();
  const caseOf = (url = '/') => new URL(url, 'http://lab').searchParams.get('case') ?? '';
  const current = (url?: string) => fixture(replaced.has(caseOf(url)) ? 'photo-ladybird.jpg' : 'photo-wood.jpg');
  origin.route('/replaced.jpg', (req, res) => void res.writeHead(200, { 'content-type': 'image/jpeg' }).end(current(req.url)));
  origin.route('/slow-replaced.jpg', (req, res) => {
    const body = current(req.url);
    setTimeout(() => res.writeHead(200, { 'content-type': 'image/jpeg' }).end(body), 1500).unref();
  });
  origin.route('/__replace', (req, res) => {
    replaced.add(caseOf(req.url));
    res.writeHead(204).end();
  });
  // Stand-ins for Node origin answers the real one in the lab cannot be made to give on demand (its entries live at
  // least its MIN_TTL_S): forward.test.ts points IMGRELAY_ORIGIN_URL at these prefixes. The headers are the Node
  // service's for a STALE answer (http/cache-control.ts: max-age=STALE_MAX_AGE_S), and fresh ones with 30 s or 1 s left.
  const asOrigin = (headers: Record<string, string>): Handler => (_req, res) =>
    void res.writeHead(200, { 'content-type': 'image/jpeg', ...headers }).end(fixture('photo-ladybird.jpg'));
  origin.route('/origin-stale/', asOrigin({ 'cache-control': 'public, max-age=60', 'x-cache': 'STALE' }));
  origin.route('/origin-30s/', asOrigin({ 'cache-control': 'public, max-age=30', 'x-cache': 'HIT-MEMORY' }));
  origin.route('/origin-1s/', asOrigin({ 'cache-control': 'public, max-age=1', 'x-cache': 'HIT-MEMORY' }));
  // 25 MiB sources (just under wrangler.toml's IMGRELAY_MAX_SOURCE_BYTES) streamed over ~1 s, with and without a
  // Content-Length, so that concurrent relays overlap in the isolate (edge-inflight.test.ts).
  origin.route('/big-declared.jpg', bigBody(true));
  origin.route('/big-chunked.jpg', bigBody(false));
  // …and a stand-in Node origin whose every transform is such a body (IMGRELAY_ORIGIN_URL = <image host>/big-origin).
  origin.route('/big-origin/', bigBody(true));
  // The suite counts origin hits through this route (tests in workerd cannot read Node objects).
  origin.route('/__hits', (req, res) => {
    const path = new URL(req.url ?? '/', 'http://lab').searchParams.get('path') ?? '';
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ hits: origin.hits(path) }));
  });
  // The Worker and its Node origin share presets (forward.test.ts): a preset name no other test uses.
  const node = await bootImgrelay({ ...zakerAt(origin.port, IMAGE_HOST), IMGRELAY_PRESETS: LAB_PRESETS });
  project.provide('lab', { imageOrigin: origin.url, nodeOrigin: node.url });
  return async () => {
    await node.close();
    await origin.close();
  };
}
