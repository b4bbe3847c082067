/**
 * The admin listener's access rules, through real sockets: never open (no token → 503 everywhere), bearer tokens
 * (missing, wrong, two at once for rotation, a removed one refused), no-store everywhere, every action logged with
 * the token's id, and the two ports kept apart (no images on the admin port, no admin routes on the public port).
 */
import { createHash } from 'node:crypto';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../src/config.js';
import { type RunningNode, startNode } from '../src/node.js';
import { recordingLogger } from './helpers/fetch-harness.js';
import { ZAKER, bootImgrelay, zakerAt } from './helpers/imgrelay.js';
import { type TestOrigin, startOrigin } from './helpers/origin.js';
import { TOKEN_A, TOKEN_B, adminFetch, solidPng } from './helpers/admin.js';

let origin: TestOrigin;
const running: RunningNode[] = [];
beforeAll(async () => {
  origin = await startOrigin();
  origin.serve('/a.png', await solidPng('#123456'), 'image/png');
});
afterAll(() => origin.close());
afterEach(async () => { await Promise.all(running.splice(0).map((node) => node.close())); });

async function boot(env: Record<string, string>): Promise<RunningNode> {
  const node = await bootImgrelay({ ...zakerAt(origin.port), ...env });
  running.push(node);
  return node;
}

const ADMIN_ROUTES: Array<[string, string]> = [['GET', '/stats'], ['GET', '/metrics'], ['POST', '/purge'], ['POST', '/warm']];

describe('admin disabled (no token configured)', () => {
  it('answers 503 E_ADMIN_DISABLED on every route, page included, saying how to enable it', async () => {
    const node = await boot({});
    for (const [method, path] of [...ADMIN_ROUTES, ['GET', '/']]) {
      const response = await adminFetch(node, path, { method, token: TOKEN_A, body: method === 'POST' ? { all: true } : undefined });
      expect(response.status, `${method} ${path}`).toBe(503);
      expect(response.headers.get('cache-control')).toBe('no-store');
      const problem = await response.json() as { code: string; detail: string };
      expect(problem.code).toBe('E_ADMIN_DISABLED');
      expect(problem.detail).toMatch(/IMGRELAY_ADMIN_TOKENS/);
    }
  });
});

describe('bearer tokens', () => {
  it('refuses a missing or wrong token with 401 E_UNAUTHORIZED and a Bearer challenge', async () => {
    const node = await boot({ IMGRELAY_ADMIN_TOKENS: TOKEN_A });
    for (const [method, path] of ADMIN_ROUTES) {
      for (const token of [null, 'not-the-token-at-all', `${TOKEN_A}x`, TOKEN_A.slice(0, -1)]) {
        const response = await adminFetch(node, path, { method, token, body: method === 'POST' ? { all: true } : undefined });
        expect(response.status, `${method} ${path} with ${token}`).toBe(401);
        expect(response.headers.get('www-authenticate')).toMatch(/^Bearer realm="imgrelay-admin"/);
        expect(response.headers.get('cache-control')).toBe('no-store');
        expect((await response.json() as { code: string }).code).toBe('E_UNAUTHORIZED');
      }
    }
    const basic = await fetch(`${node.adminUrl}/stats`, { headers: { authorization: `Basic ${btoa(`admin:${TOKEN_A}`)}` } });
    expect(basic.status).toBe(401);
  });

  it('accepts both tokens during a rotation, and refuses the old one once it is removed from the config', async () => {
    const both = await boot({ IMGRELAY_ADMIN_TOKENS: `${TOKEN_A}, ${TOKEN_B}` });
    for (const token of [TOKEN_A, TOKEN_B]) {
      const response = await adminFetch(both, '/stats', { token });
      expect(response.status).toBe(200);
      expect(response.headers.get('cache-control')).toBe('no-store');
      expect((await response.json() as { memory: object }).memory).toBeDefined();
    }
    const rotated = await boot({ IMGRELAY_ADMIN_TOKENS: TOKEN_B });
    expect((await adminFetch(rotated, '/stats', { token: TOKEN_A })).status).toBe(401);
    expect((await adminFetch(rotated, '/stats', { token: TOKEN_B })).status).toBe(200);
  });

  it('logs every action and every refusal with the token id (first 8 hex of its SHA-256), never the token', async () => {
    const logger = recordingLogger();
    const node = await startNode(parseConfig({ IMGRELAY_PORT: '0', IMGRELAY_ADMIN_PORT: '0', IMGRELAY_HOST: '127.0.0.1',
      IMGRELAY_STORE: 'none', IMGRELAY_ADMIN_TOKENS: TOKEN_A }), { logger });
    running.push(node);
    expect((await adminFetch(node, '/purge', { body: { hosts: [ZAKER] } })).status).toBe(200);
    expect((await adminFetch(node, '/stats', { token: TOKEN_B })).status).toBe(401);
    const id = (token: string) => createHash('sha256').update(token).digest('hex').slice(0, 8);
    const actions = logger.entries.filter((e) => 'admin' in e.obj).map((e) => e.obj as Record<string, unknown>);
    expect(actions).toContainEqual(expect.objectContaining({ admin: 'purge', tokenId: id(TOKEN_A),
      result: expect.objectContaining({ memory: 0, store: null }) }));
    expect(actions).toContainEqual(expect.objectContaining({ admin: 'GET /stats', tokenId: id(TOKEN_B), result: 'Invalid token' }));
    expect(JSON.stringify(logger.entries)).not.toContain(TOKEN_A);
    expect(JSON.stringify(logger.entries)).not.toContain(TOKEN_B);
  });
});

describe('two ports, two jobs', () => {
  it('the admin port never answers image routes, even with a valid token', async () => {
    const node = await boot({ IMGRELAY_ADMIN_TOKENS: TOKEN_A });
    const hits = origin.hits('/a.png');
    for (const path of [`/?http://${ZAKER}/a.png`, `/?url=${encodeURIComponent(`http://${ZAKER}/a.png`)}`,
      `/cdn-cgi/image/width=10/http://${ZAKER}/a.png`]) {
      for (const token of [TOKEN_A, null]) {
        const response = await adminFetch(node, path, { token });
        expect(response.status, path).toBe(404);
        expect(response.headers.get('content-type')).toBe('application/problem+json');
        expect(response.headers.get('cache-control')).toBe('no-store');
      }
    }
    expect(origin.hits('/a.png')).toBe(hits);
    // The same image on the public port is served.
    expect((await fetch(`${node.url}/?http://${ZAKER}/a.png`)).status).toBe(200);
  });

  it('the public port never answers admin routes', async () => {
    const node = await boot({ IMGRELAY_ADMIN_TOKENS: TOKEN_A });
    const auth = { authorization: `Bearer ${TOKEN_A}`, 'content-type': 'application/json' };
    for (const [method, path] of [...ADMIN_ROUTES, ['GET', '/admin.js'], ['POST', '/']]) {
      const response = await fetch(`${node.url}${path}`, { method, headers: auth,
        body: method === 'POST' ? JSON.stringify({ all: true }) : undefined });
      expect([404, 405], `${method} ${path}`).toContain(response.status);
      const text = await response.text();
      expect(text).not.toContain('imgrelay_requests_total');
      expect(text).not.toContain('"memory"');
    }
    // Nothing was purged through the public port: the admin port still shows an intact, working service.
    expect((await adminFetch(node, '/stats')).status).toBe(200);
  });

  it('serves the page without a token, under a strict CSP, with no data in it', async () => {
    const node = await boot({ IMGRELAY_ADMIN_TOKENS: TOKEN_A });
    const response = await adminFetch(node, '/', { token: null });
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toMatch(/^text\/html/);
    expect(response.headers.get('cache-control')).toBe('no-store');
    const csp = response.headers.get('content-security-policy') ?? '';
    expect(csp).toContain("default-src 'none'");
    expect(csp).toContain("script-src 'self'");
    expect(csp).not.toContain('unsafe-inline');
    const html = await response.text();
    expect(html).not.toMatch(/<script>|\son\w+=/); // no inline script, no inline handlers
    expect(html).not.toContain(TOKEN_A);
    expect((await adminFetch(node, '/admin.js', { token: null })).status).toBe(200);
  });
});
