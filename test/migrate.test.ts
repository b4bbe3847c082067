/**
 * Moving a hexo blog off the old CORS worker, end to end with real parts: the fixture blog (test/fixtures/hexo-blog,
 * posts written for this test) is rewritten by `imgrelay rewrite`, built by the real `hexo` with the hexo-imgrelay
 * plugin (bundled from src/migrate as it is published), warmed by `imgrelay warm` through the admin API, and every
 * page is opened in Chromium against a hotlink-protected loopback origin (refuses a foreign Referer).
 */
import { createServer, type Server } from 'node:http';
import { cp, mkdir, readFile, readdir, symlink, writeFile } from 'node:fs/promises';
import { mkdtempSync, rmSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { extname, join, relative, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../src/cli.js';
import type { RunningNode } from '../src/node.js';
import { buildPlugin } from '../hexo/build.mjs';
import { TOKEN_A } from './helpers/admin.js';
import { launchChromium } from './helpers/chromium.js';
import { ZAKER, bootImgrelay, zakerAt } from './helpers/imgrelay.js';
import { type TestOrigin, startOrigin } from './helpers/origin.js';

const REPO = resolve(import.meta.dirname, '..');
const FIXTURE = join(REPO, 'test/fixtures/hexo-blog');
const PLACEHOLDER = 'https://img.example.com';
const OLD = 'cors.zfour.workers.dev';
/** The blog's image paths on the hotlink-protected host, served from real test images. */
const IMAGES: Record<string, string> = {
  '/202107/a1_1024.jpg': 'photo-ladybird.jpg', '/202107/b2_1024.jpg': 'progressive.jpg',
  '/202108/c3_1024.jpg': 'photo-wood.jpg', '/202108/d4_1024.png': 'palette-alpha.png',
  '/202109/e5_1024.webp': 'tiny-256-lossy.webp',
};

let origin: TestOrigin;
let relay: RunningNode;
const site = mkdtempSync(join(tmpdir(), 'imgrelay-hexo-'));
const posts = join(site, 'source/_posts');

beforeAll(async () => {
  origin = await startOrigin();
  for (const [path, file] of Object.entries(IMAGES)) {
    const body = await readFile(join(REPO, 'test/fixtures', file));
    origin.route(path, (req, res) => {
      // Hotlink protection, as the blog's image host does: a page elsewhere may not embed these images.
      const referer = req.headers.referer;
      if (referer && new URL(referer).hostname !== ZAKER) return void res.writeHead(403).end('hotlinking refused');
      res.writeHead(200, { 'content-type': `image/${extname(file).slice(1).replace('jpg', 'jpeg')}` }).end(body);
    });
  }
  relay = await bootImgrelay({ ...zakerAt(origin.port), IMGRELAY_ADMIN_TOKENS: TOKEN_A });
  await cp(FIXTURE, site, { recursive: true });
  for (const file of await listFiles(site)) {
    const text = await readFile(file, 'utf8');
    if (text.includes(PLACEHOLDER)) await writeFile(file, text.replaceAll(PLACEHOLDER, relay.url));
  }
});

afterAll(async () => {
  await relay?.close();
  await origin?.close();
  rmSync(site, { recursive: true, force: true });
});

async function listFiles(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { withFileTypes: true, recursive: true });
  return entries.filter((e) => e.isFile()).map((e) => join(e.parentPath, e.name)).sort();
}

async function snapshot(dir: string): Promise<Map<string, string>> {
  const files = await listFiles(dir);
  return new Map(await Promise.all(files.map(async (f) => [relative(dir, f), await readFile(f, 'latin1')] as [string, string])));
}

function cli(args: string[], env: Record<string, string> = {}, tty = false) {
  const io = { text: '', tty, out(t: string) { io.text += t; }, err(t: string) { io.text += t; } };
  return runCli(args, env, io).then((code) => ({ code, text: io.text }));
}

const rewrite = (...paths: string[]) =>
  cli(['rewrite', ...paths, '--base', relay.url, '--widths', '480,800']);

describe('imgrelay rewrite on the fixture blog', () => {
  it('moves every old URL, refuses the broken post untouched, keeps untouched posts byte for byte; a second run changes nothing', async () => {
    const before = await snapshot(join(site, 'source'));
    const first = await rewrite(join(site, 'source'));
    expect(first.code).toBe(1); // one refused file
    expect(first.text).toMatch(/REFUSED\s+\S*07-malformed\.md: .*unclosed quote/);
    const after = await snapshot(join(site, 'source'));
    for (const [file, text] of after) {
      if (file.endsWith('07-malformed.md')) continue;
      expect(text.includes(OLD), `${file} still has old-worker URLs`).toBe(false);
    }
    for (const file of ['_posts/05-plain-text.md', '_posts/06-already-moved.md', '_posts/07-malformed.md', '_posts/08-new-post.md']) {
      expect(after.get(file), file).toBe(before.get(file));
    }
    const crlf = after.get('_posts/03-crlf-notes.md')!;
    expect(crlf).not.toBe(before.get('_posts/03-crlf-notes.md'));
    expect(crlf.split('\n').length).toBe(crlf.split('\r\n').length);
    expect(await readFile(join(posts, '02-ladybird.md'), 'utf8')).toContain('title: 瓢虫 — la coccinelle\n');
    // The tag without data-width got its size from the metadata lookup; the first image is never lazy.
    const encoded = await readFile(join(posts, '04-encoded.md'), 'utf8');
    expect(encoded).toMatch(/alt="encoded once" width="2268" height="1512" srcset="[^"]+&amp;w=800 800w/);
    expect(encoded).toMatch(/alt="over http" referrerpolicy="no-referrer" width="256" height="256" loading="lazy"/);

    const quoted = await readFile(join(posts, '12-quoted-front-matter.md'), 'utf8');
    expect(quoted).toMatch(/^---\n# written by an older theme's generator\ntitle: "Quoted: values and comments"\n/);
    expect(quoted).toContain(`headimg: "${relay.url}/?http://${ZAKER}/202108/c3_1024.jpg" # the banner\n`);
    expect(quoted).toContain(`  - '${relay.url}/?http://${ZAKER}/202107/a1_1024.jpg'\n  - ${relay.url}/?http://${ZAKER}/202108/d4_1024.png\n`);
    // An explicit loading= is kept; after a Markdown image, the first <img> is not the first image: it may be lazy.
    expect(await readFile(join(posts, '10-eager.md'), 'utf8')).toMatch(/loading="eager" width="256" height="256">/);
    expect(await readFile(join(posts, '09-markdown-first.md'), 'utf8')).toMatch(/sizes="[^"]+" loading="lazy" decoding="async">/);

    const second = await rewrite(join(site, 'source'));
    expect(second.text).not.toMatch(/rewritten|would rewrite/);
    expect(await snapshot(join(site, 'source'))).toEqual(after);
  });

  it('--dry-run prints the diff and writes nothing; the fixed post is then rewritten', async () => {
    const broken = join(posts, '07-malformed.md');
    const text = await readFile(broken, 'utf8');
    await writeFile(broken, text.replace('.jpg referrerpolicy', '.jpg" referrerpolicy'));
    const fixed = await readFile(broken, 'utf8');
    const dry = await cli(['rewrite', broken, '--base', relay.url, '--widths', '480,800', '--dry-run']);
    expect(dry.code).toBe(0);
    expect(dry.text).toContain(`-<img class="lazy" data-width="2560" data-height="1920" src="https://${OLD}/?`);
    expect(dry.text).toMatch(/\n\+<img class="lazy" [^\n]*src="http:\/\/127\.0\.0\.1:\d+\/\?http:\/\/zkres2/);
    expect(await readFile(broken, 'utf8')).toBe(fixed);
    expect((await rewrite(broken)).code).toBe(0);
    expect(await readFile(broken, 'utf8')).not.toContain(OLD);
  });
});

describe('usage and failures', () => {
  it('rewrite without --base is a usage error (exit 2), and touches nothing', async () => {
    const before = await snapshot(posts);
    const run = await cli(['rewrite', posts]);
    expect(run.code).toBe(2);
    expect(run.text).toContain('--base <imgrelay URL> is required');
    expect(await snapshot(posts)).toEqual(before);
  });

  it('warm reports the URL that failed, draws a bar on a terminal, and exits 1', async () => {
    const dir = join(site, 'warm-check');
    await mkdir(dir, { recursive: true });
    await writeFile(join(dir, 'page.html'), `<img src="${relay.url}/?http://${ZAKER}/202108/d4_1024.png">`
      + `<img src="${relay.url}/?http://${ZAKER}/gone.jpg">`);
    const run = await cli(['warm', dir], { IMGRELAY_ADMIN_URL: relay.adminUrl, IMGRELAY_ADMIN_TOKEN: TOKEN_A }, true);
    expect(run.code).toBe(1);
    expect(run.text).toMatch(/\r\[#+\.*\] 1\/2/);
    expect(run.text).toMatch(/ok     \S+d4_1024\.png \(\d+ bytes; avif (MISS|HIT-MEMORY)/);
    expect(run.text).toMatch(/FAILED \S+gone\.jpg \(avif: \d{3} E_[A-Z_]+ /);
    expect(run.text).toContain('warmed 1 of 2 URL(s) in 3 Accept buckets');
  });
});

describe('the built blog', () => {
  it('hexo with hexo-imgrelay builds it; after imgrelay warm every page loads every image as a cache hit, without layout shift', async () => {
    await installSiteModules();
    const { default: Hexo } = await import('hexo');
    const hexo = new Hexo(site, { silent: true });
    hexo.env.init = true; // what hexo-cli sets for a site folder: plugins in package.json are loaded
    await hexo.init();
    await hexo.call('generate', {});
    await hexo.exit();
    const pages = (await listFiles(join(site, 'public'))).filter((f) => f.endsWith('.html'));
    expect(pages.length).toBeGreaterThanOrEqual(13); // index, 12 posts, the gallery
    const newPost = await readFile(join(site, 'public/08-new-post/index.html'), 'utf8');
    expect(newPost).toMatch(new RegExp(`<img src="${relay.url}/\\?http://${ZAKER}/202108/c3_1024.jpg"[^>]* width="2560" height="1920" srcset=`));
    for (const page of pages) expect(await readFile(page, 'utf8'), page).not.toContain(OLD);

    const warmed = await cli(['warm', join(site, 'public')], { IMGRELAY_ADMIN_URL: relay.adminUrl, IMGRELAY_ADMIN_TOKEN: TOKEN_A });
    expect(warmed.code, warmed.text).toBe(0);
    expect(warmed.text).toMatch(/warmed (\d+) of \1 URL\(s\) in 3 Accept buckets/);
    const originHits = origin.requests.length;

    const blog = await serveStatic(join(site, 'public'));
    const browser = await launchChromium();
    try {
      for (const page of pages) await checkPage(browser.context, `${blog.url}/${relative(join(site, 'public'), page)}`);
    } finally {
      await browser.close();
      blog.server.close();
    }
    expect(origin.requests.length, 'a page view reached the origin: not a cache hit').toBe(originHits);
    // Without imgrelay, the same image embedded by the blog is refused by the host:
    const direct = await fetch(`${origin.url}/202107/a1_1024.jpg`, { headers: { referer: `${blog.url}/` } });
    expect(direct.status).toBe(403);
  }, 120_000);
});

/** node_modules of the temporary site: hexo and its renderers from the repo, hexo-imgrelay built as it is packed. */
async function installSiteModules(): Promise<void> {
  const modules = join(site, 'node_modules');
  await mkdir(modules, { recursive: true });
  for (const name of ['hexo', 'hexo-renderer-marked', 'hexo-renderer-ejs']) {
    await symlink(join(REPO, 'node_modules', name), join(modules, name), 'dir');
  }
  const plugin = join(modules, 'hexo-imgrelay');
  await mkdir(plugin);
  for (const file of ['index.js', 'package.json']) await cp(join(REPO, 'hexo', file), join(plugin, file));
  await buildPlugin(join(plugin, 'lib'));
}

interface PageImages {
  images: Array<{ src: string; complete: boolean; naturalWidth: number; boxBeforeLoad: number | null }>;
  layoutShift: number;
}

async function checkPage(context: import('playwright-core').BrowserContext, url: string): Promise<void> {
  const page = await context.newPage();
  await page.setViewportSize({ width: 1000, height: 8000 }); // every lazy image is in view: all of them load
  await page.addInitScript(() => {
    const w = window as unknown as { shift: number; boxes: Map<Element, number> };
    w.shift = 0;
    w.boxes = new Map();
    new PerformanceObserver((list) => {
      for (const entry of list.getEntries()) w.shift += (entry as unknown as { value: number }).value;
    }).observe({ type: 'layout-shift', buffered: true });
    // Each image's box as laid out before its bytes arrive (or null when it had already loaded).
    document.addEventListener('DOMContentLoaded', () => {
      for (const img of document.images) w.boxes.set(img, img.complete ? -1 : img.getBoundingClientRect().height);
    });
  });
  const responses: Array<{ url: string; status: number; cache: string | undefined }> = [];
  page.on('response', (r) => {
    if (r.request().resourceType() === 'image') responses.push({ url: r.url(), status: r.status(), cache: r.headers()['x-cache'] });
  });
  await page.goto(url, { waitUntil: 'load' });
  const seen = await page.evaluate(async () => {
    await new Promise((done) => setTimeout(done, 200));
    const w = window as unknown as { shift: number; boxes: Map<Element, number> };
    return { layoutShift: w.shift, images: [...document.images].map((img) => ({ src: img.currentSrc,
      complete: img.complete, naturalWidth: img.naturalWidth,
      boxBeforeLoad: w.boxes.get(img) === -1 ? null : w.boxes.get(img) ?? null })) } satisfies PageImages;
  });
  await page.close();
  for (const img of seen.images) {
    expect(img.complete && img.naturalWidth > 0, `${url}: ${img.src} did not load`).toBe(true);
    if (img.boxBeforeLoad !== null) expect(img.boxBeforeLoad, `${url}: ${img.src} had no box before loading`).toBeGreaterThan(0);
  }
  expect(seen.layoutShift, `${url}: layout shifted`).toBe(0);
  for (const r of responses) {
    expect(r.url.startsWith(relay.url), `${url}: ${r.url} not through imgrelay`).toBe(true);
    expect(r.status, r.url).toBe(200);
    expect(r.cache, `${url}: first view of ${r.url}`).toMatch(/^HIT-/);
  }
}

async function serveStatic(root: string): Promise<{ server: Server; url: string }> {
  const types: Record<string, string> = { '.html': 'text/html; charset=utf-8', '.css': 'text/css', '.js': 'text/javascript' };
  const server = createServer((req, res) => {
    const path = decodeURIComponent((req.url ?? '/').split('?')[0]);
    const file = join(root, path.endsWith('/') ? `${path}index.html` : path);
    if (!file.startsWith(root)) return void res.writeHead(404).end();
    readFile(file).then((body) => res.writeHead(200, { 'content-type': types[extname(file)] ?? 'application/octet-stream' }).end(body),
      () => res.writeHead(404).end());
  });
  await new Promise<void>((done) => server.listen(0, '127.0.0.1', done));
  return { server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}` };
}
