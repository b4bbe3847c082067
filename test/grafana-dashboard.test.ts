/**
 * deploy/grafana/imgrelay.json stays true to the service: every metric its PromQL names exists in a live `/metrics`
 * of a booted service (histogram series by their `_bucket`/`_sum`/`_count` suffixes), every label its selectors use
 * is on that metric, and every expression parses (promtool, as Prometheus would).
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunningNode } from '../src/node.js';
import { ZAKER, bootImgrelay, zakerAt } from './helpers/imgrelay.js';
import { type TestOrigin, startOrigin } from './helpers/origin.js';
import { TOKEN_A, adminFetch, fetchImage, purge, solidPng } from './helpers/admin.js';

const PROMTOOL = '/usr/bin/promtool';

interface Dashboard {
  panels: Array<{ id: number; title: string; targets: Array<{ expr: string }> }>;
  templating: { list: Array<{ query: { query: string } }> };
}

let origin: TestOrigin;
let node: RunningNode;
let dir: string;
let dashboard: Dashboard;
let exposition: string;

beforeAll(async () => {
  dashboard = JSON.parse(await readFile(new URL('../deploy/grafana/imgrelay.json', import.meta.url), 'utf8')) as Dashboard;
  origin = await startOrigin();
  origin.serve('/g.png', await solidPng('#468', 64, 48), 'image/png');
  dir = await mkdtemp(join(tmpdir(), 'imgrelay-grafana-'));
  node = await bootImgrelay({ ...zakerAt(origin.port), IMGRELAY_STORE: 'fs', IMGRELAY_CACHE_DIR: dir, IMGRELAY_ADMIN_TOKENS: TOKEN_A });
  // Traffic that makes every labelled series appear: a miss, hits, a resize, an origin error, a purge.
  const legacy = `${node.url}/?http://${ZAKER}/g.png`;
  for (let i = 0; i < 3; i += 1) expect((await fetchImage(legacy)).status).toBe(200);
  expect((await fetchImage(`${node.url}/?url=${encodeURIComponent(`http://${ZAKER}/g.png`)}&w=20`)).status).toBe(200);
  expect((await fetchImage(`${node.url}/?http://${ZAKER}/missing.png`)).status).toBe(404);
  await node.store!.writes.drain(10_000);
  await purge(node, { hosts: [ZAKER] });
  exposition = await (await adminFetch(node, '/metrics')).text();
}, 60_000);
afterAll(async () => {
  await node?.close();
  await origin?.close();
  await rm(dir, { recursive: true, force: true });
});

const expressions = () => [
  ...dashboard.panels.flatMap((panel) => panel.targets.map((target) => target.expr)),
  ...dashboard.templating.list.map((variable) => variable.query.query),
];

/** `# TYPE name kind` of the exposition: name → kind. */
const declaredTypes = () => new Map([...exposition.matchAll(/^# TYPE (\S+) (\S+)$/gm)].map((m) => [m[1], m[2]]));

/** The metric family a series name belongs to (a histogram's `_bucket`, `_sum`, `_count` series). */
function familyOf(name: string, types: Map<string, string>): string | undefined {
  if (types.has(name)) return name;
  const base = name.replace(/_(bucket|sum|count)$/, '');
  return types.get(base) === 'histogram' ? base : undefined;
}

describe('deploy/grafana/imgrelay.json', () => {
  it('has the dashboard panels, each with at least one query', () => {
    expect(dashboard.panels.map((p) => p.title)).toEqual([
      'Requests/s by X-Cache', 'Hit ratio', 'Latency p50/p95: hits and misses', 'Stage latency p95',
      'Origin fetches/s by host (top 10)', 'Origin errors/s by host (top 10)', 'Transform queue', 'Memory tier vs budget',
      'Store: breaker, write queue, drops, errors', 'Process RSS and bytes in flight']);
    expect(new Set(dashboard.panels.map((p) => p.id)).size).toBe(dashboard.panels.length);
    for (const panel of dashboard.panels) expect(panel.targets.length, panel.title).toBeGreaterThan(0);
  });

  it('names only metrics a running service exposes', () => {
    const types = declaredTypes();
    const names = new Set(expressions().flatMap((expr) => [...expr.matchAll(/\bimgrelay_[a-z0-9_]+/g)].map((m) => m[0])));
    expect(names.size).toBeGreaterThan(12);
    const missing = [...names].filter((name) => familyOf(name, types) === undefined);
    expect(missing).toEqual([]);
  });

  it('selects only labels those metrics carry', () => {
    const types = declaredTypes();
    for (const expr of expressions()) {
      for (const [, name, selector] of expr.matchAll(/\b(imgrelay_[a-z0-9_]+)\{([^}]*)\}/g)) {
        const labels = [...selector.matchAll(/(\w+)\s*(?:=~|!~|!=|=)/g)].map((m) => m[1]).filter((l) => l !== 'instance');
        const family = familyOf(name, types)!;
        const series = exposition.split('\n').filter((line) => line.startsWith(`${family}{`) || line.startsWith(`${name}{`));
        for (const label of labels) {
          expect(series.some((line) => line.includes(`${label}="`)), `${name} has label ${label}`).toBe(true);
        }
      }
    }
  });

  it('parses as PromQL (promtool check rules)', async () => {
    expect(existsSync(PROMTOOL), `${PROMTOOL}: apt-get install prometheus (listed in .ci/apt-packages)`).toBe(true);
    // Grafana's variables become what Prometheus would get: a range and a regex.
    const rules = dashboard.panels.flatMap((panel) => panel.targets).map((target, i) =>
      `      - record: imgrelay:grafana_check_${i}\n        expr: ${JSON.stringify(target.expr.replaceAll('$__rate_interval', '1m').replaceAll('$instance', '.*'))}`);
    const file = join(dir, 'grafana-rules.yml');
    await writeFile(file, `groups:\n  - name: grafana\n    rules:\n${rules.join('\n')}\n`);
    const { stdout } = await promisify(execFile)(PROMTOOL, ['check', 'rules', file]);
    expect(stdout).toMatch(new RegExp(`SUCCESS: ${rules.length} rules found`));
  });
});
