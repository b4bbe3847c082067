/**
 * The alerting rules operators load (deploy/prometheus/alerts.yml): Prometheus' own checker accepts them, their unit
 * tests (alerts.test.yml: which alert fires on which series) pass, and every imgrelay_* metric they name exists in the
 * /metrics of a booted service with an S3 store (so a renamed metric fails here, not silently in production).
 * promtool comes from Debian's `prometheus` package (.ci/apt-packages); missing is a failure, never a skip.
 */
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunningNode } from '../src/node.js';
import { TOKEN_A, adminFetch, solidPng } from './helpers/admin.js';
import { ZAKER, bootImgrelay, zakerAt } from './helpers/imgrelay.js';
import { type TestOrigin, startOrigin } from './helpers/origin.js';
import { type TestS3, startS3ForService } from './helpers/s3.js';

const run = promisify(execFile);
const RULES = fileURLToPath(new URL('../deploy/prometheus/alerts.yml', import.meta.url));
const RULE_TESTS = fileURLToPath(new URL('../deploy/prometheus/alerts.test.yml', import.meta.url));
/** Series Prometheus makes itself, not the service. */
const PROMETHEUS_SERIES = new Set(['up']);

function promtool(): string {
  for (const dir of [...(process.env.PATH ?? '').split(':'), '/usr/bin', '/usr/local/bin']) {
    if (dir && existsSync(join(dir, 'promtool'))) return join(dir, 'promtool');
  }
  throw new Error('promtool is not installed: apt-get install prometheus (it is listed in .ci/apt-packages)');
}

let origin: TestOrigin;
let s3: TestS3;
let node: RunningNode;
beforeAll(async () => {
  origin = await startOrigin();
  origin.serve('/m.png', await solidPng('#335577'), 'image/png');
  s3 = await startS3ForService();
  node = await bootImgrelay({ ...zakerAt(origin.port), IMGRELAY_STORE: 's3', IMGRELAY_S3_BUCKET: s3.bucket,
    IMGRELAY_S3_ENDPOINT: s3.endpoint, IMGRELAY_S3_FORCE_PATH_STYLE: 'true', IMGRELAY_ADMIN_TOKENS: TOKEN_A });
});
afterAll(async () => {
  await node?.close();
  await s3?.close();
  await origin?.close();
});

describe('deploy/prometheus/alerts.yml', () => {
  it('passes promtool check rules, and its unit tests fire each alert on its condition and not before', async () => {
    const checked = await run(promtool(), ['check', 'rules', RULES]);
    expect(checked.stdout).toMatch(/SUCCESS: \d+ rules found/);
    const tested = await run(promtool(), ['test', 'rules', RULE_TESTS]);
    expect(tested.stdout).toContain('SUCCESS');
    // A broken rule is caught (the check is not a formality).
    const dir = mkdtempSync(join(tmpdir(), 'imgrelay-rules-'));
    try {
      const broken = join(dir, 'broken.yml');
      writeFileSync(broken, readFileSync(RULES, 'utf8').replace('[5m]))', '[5m])'));
      await expect(run(promtool(), ['check', 'rules', broken])).rejects.toMatchObject({ code: 1 });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('names only metrics that a running service exposes on /metrics', async () => {
    // One miss, one hit and one error, so labelled series exist too (names are listed either way).
    await fetch(`${node.url}/?url=${encodeURIComponent(`http://${ZAKER}/m.png`)}&w=8`);
    await fetch(`${node.url}/?url=${encodeURIComponent(`http://${ZAKER}/m.png`)}&w=8`);
    await fetch(`${node.url}/?url=${encodeURIComponent(`http://${ZAKER}/missing.png`)}`);
    const exposition = await (await adminFetch(node, '/metrics')).text();
    const exposed = new Set<string>();
    for (const line of exposition.split('\n')) {
      const name = /^(?:# TYPE )?([a-zA-Z_:][a-zA-Z0-9_:]*)/.exec(line)?.[1];
      if (name && name !== '#') exposed.add(name);
    }
    const used = new Set(readFileSync(RULES, 'utf8').match(/\bimgrelay_[a-z0-9_]+\b/g));
    expect(used.size).toBeGreaterThan(10);
    const missing = [...used].filter((name) => !exposed.has(name) && !PROMETHEUS_SERIES.has(name));
    expect(missing).toEqual([]);
    // The names used in the alerts' expressions are really the ones this check compared.
    expect(used).toContain('imgrelay_store_breaker_open');
    expect(used).toContain('imgrelay_stage_duration_seconds_bucket');
  });
});
