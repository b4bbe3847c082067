/**
 * The admin page (`GET /`): static HTML, script and style, no framework, no data (served without a token). Its API
 * calls carry the token the admin types in, kept in the page's memory only. The strict CSP allows nothing but
 * this origin's own script, style and API: no inline code, no third party, no framing, no form posts.
 */

import { DASHBOARD_CSS, DASHBOARD_HTML } from './dashboard-page.js';

export const PAGE_CSP = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; "
  + "base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

export const PAGE_HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>imgrelay admin</title>
<link rel="stylesheet" href="/assets/uplot.css">
<link rel="stylesheet" href="/admin.css">
<script src="/admin.js" defer></script>
<script src="/assets/uplot.js" defer></script>
<script src="/dashboard.js" defer></script>
</head>
<body>
<main>
<h1>imgrelay admin</h1>
<p><label for="token">Admin token</label>
<input id="token" type="password" autocomplete="off" spellcheck="false" placeholder="one of IMGRELAY_ADMIN_TOKENS"></p>

${DASHBOARD_HTML}

<section>
<h2>Purge</h2>
<form id="purge-form">
<p><label for="purge-kind">Purge by</label>
<select id="purge-kind">
<option value="urls">URLs (proxy or source: every variant goes)</option>
<option value="hosts">source hosts</option>
<option value="prefixes">source URL prefixes</option>
<option value="tags">tags (surrogate keys)</option>
</select></p>
<p><label for="purge-input">One per line</label>
<textarea id="purge-input" rows="6" spellcheck="false"></textarea></p>
<p><button type="submit">Purge</button> <button type="button" id="purge-all">Purge everything…</button></p>
</form>
<output id="purge-result" role="status"></output>
<table id="purge-tiers" hidden>
<caption>Per tier and instance</caption>
<thead><tr><th scope="col">Tier</th><th scope="col">Where</th><th scope="col">State</th><th scope="col">Removed</th>
<th scope="col">Fenced</th><th scope="col">Skipped</th><th scope="col">Detail</th></tr></thead>
<tbody></tbody>
</table>
<pre id="purge-json"></pre>
</section>

<section>
<h2>Warm</h2>
<form id="warm-form">
<p><label for="warm-input">Image URLs (one per line) or the HTML of an article</label>
<textarea id="warm-input" rows="8" spellcheck="false"></textarea></p>
<p><label for="warm-base">Article URL (base for relative image links)</label>
<input id="warm-base" type="url" spellcheck="false"></p>
<p><button type="submit">Warm</button></p>
</form>
<output id="warm-result" role="status"></output>
<pre id="warm-json"></pre>
</section>

<section>
<h2>Stats</h2>
<p><button type="button" id="stats-refresh">Refresh</button>
Prometheus metrics: <code>GET /metrics</code> with the same bearer token.</p>
<output id="stats-result" role="status"></output>
<pre id="stats-json"></pre>
</section>
</main>
</body>
</html>
`;

export const PAGE_CSS = `body { font: 15px/1.45 system-ui, sans-serif; margin: 0; background: #f6f7f9; color: #1d232b; }
main { max-width: 64rem; margin: 0 auto; padding: 1rem 1.5rem 3rem; }
section { background: #fff; border: 1px solid #d9dee5; border-radius: 6px; padding: 0.5rem 1rem 1rem; margin: 1rem 0; }
label { display: block; font-weight: 600; margin-bottom: 0.2rem; }
textarea, input, select { width: 100%; box-sizing: border-box; font: 13px ui-monospace, monospace; padding: 0.4rem; }
button { font: inherit; padding: 0.35rem 0.9rem; cursor: pointer; }
output { display: block; font-weight: 600; margin: 0.5rem 0; }
output.error { color: #b3261e; }
output.ok { color: #1b6e2e; }
pre { background: #f1f3f6; padding: 0.5rem; overflow: auto; max-height: 22rem; font-size: 12px; }
pre:empty { display: none; }
table { border-collapse: collapse; width: 100%; font-size: 13px; margin: 0.5rem 0; }
caption { text-align: left; font-weight: 600; }
th, td { border: 1px solid #d9dee5; padding: 0.2rem 0.4rem; text-align: left; vertical-align: top; }
td.failed { color: #b3261e; font-weight: 600; }
${DASHBOARD_CSS}`;

export const PAGE_JS = `'use strict';
const $ = (id) => document.getElementById(id);
const lines = (text) => text.split('\\n').map((s) => s.trim()).filter(Boolean);

async function call(method, path, body) {
  const headers = { authorization: 'Bearer ' + $('token').value.trim() };
  if (body !== undefined) headers['content-type'] = 'application/json';
  try {
    const response = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
    const data = await response.json().catch(() => ({}));
    return { ok: response.ok, status: response.status, data };
  } catch (error) {
    return { ok: false, status: 0, data: { detail: 'the admin API did not answer (' + error.message + ')' } };
  }
}

const failure = (result) => 'Error ' + result.status + ': ' + (result.data.detail || result.data.title || 'request failed');

function show(prefix, result, summarize) {
  const out = $(prefix + '-result');
  out.className = result.ok ? 'ok' : 'error';
  out.textContent = result.ok ? summarize(result.data) : failure(result);
  $(prefix + '-json').textContent = JSON.stringify(result.data, null, 2);
}

const describePurge = (r) => (r.status === 'partial' ? 'PARTIAL (some tiers not reached) — ' : '') + 'Purged: memory ' + r.memory + ', store ' + (r.store === null ? 'none' : r.store)
  + (r.storeSkipped ? ' (skipped ' + r.storeSkipped + ' object(s) that are not imgrelay keys)' : '')
  + '; other instances: ' + r.instances
  + (r.cdn.length ? '; CDN: ' + r.cdn.map((c) => c.target + ' ' + (c.ok ? 'ok' : 'failed (' + c.detail + ')')).join(', ') : '')
  + (r.warnings ? '; ' + r.warnings.join('; ') : '');

/** The per-tier report: one row per tier and instance; a tier not reached is marked. DOM only: no HTML parsing. */
function showTiers(result) {
  const table = $('purge-tiers');
  const body = table.tBodies[0];
  body.replaceChildren();
  const tiers = result.ok && Array.isArray(result.data.tiers) ? result.data.tiers : [];
  for (const t of tiers) {
    const row = body.insertRow();
    // Skipped: objects in the store that are not imgrelay keys, met and left alone (a shared bucket).
    for (const value of [t.tier, t.where, t.state === 'failed' ? 'not reached' : t.state, t.removed, t.fenced, t.skipped, t.detail]) {
      row.insertCell().textContent = value === undefined ? '' : String(value);
    }
    if (t.state === 'failed') row.cells[2].className = 'failed';
  }
  table.hidden = tiers.length === 0;
}

const describeWarm = (r) => 'Warmed ' + r.ok + ' of ' + r.total + (r.failed ? ' (' + r.failed + ' failed)' : '');

async function purge(body) {
  $('purge-result').textContent = 'Purging…';
  const result = await call('POST', '/purge', body);
  show('purge', result, describePurge);
  showTiers(result);
  if (result.status === 207) $('purge-result').className = 'error';
}

async function warm() {
  const text = $('warm-input').value;
  const base = $('warm-base').value.trim();
  const body = text.includes('<') ? (base ? { html: text, base } : { html: text }) : { urls: lines(text) };
  $('warm-result').textContent = 'Warming…';
  show('warm', await call('POST', '/warm', body), describeWarm);
}

async function stats() {
  show('stats', await call('GET', '/stats'), (s) => 'Memory: ' + s.memory.entries + ' entries, ' + s.memory.bytes
    + ' bytes; served ' + s.requests.served + ', hit ratio ' + s.requests.hitRatio.overall);
}

document.addEventListener('DOMContentLoaded', () => {
  $('purge-form').addEventListener('submit', (event) => {
    event.preventDefault();
    void purge({ [$('purge-kind').value]: lines($('purge-input').value) });
  });
  $('purge-all').addEventListener('click', () => {
    if (confirm('Purge every cached image from every tier, every instance and the CDN?')) void purge({ all: true });
  });
  $('warm-form').addEventListener('submit', (event) => {
    event.preventDefault();
    void warm();
  });
  $('stats-refresh').addEventListener('click', () => void stats());
});
`;
