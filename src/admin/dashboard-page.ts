/**
 * The dashboard part of the admin page: live charts of `GET /history` (drawn with uPlot, served from this listener
 * at /assets/uplot.js), a summary line, the busiest origin hosts, and the recent purges and warm jobs. Like the rest
 * of the page it calls the API with the token typed in (kept in memory only) and runs under the page's strict CSP:
 * script from 'self' (this file and uPlot, no eval, no inline code); uPlot styles its elements through the CSSOM,
 * which style-src does not govern, and its stylesheet comes from 'self' too.
 */

export const DASHBOARD_HTML = `<section id="dashboard">
<h2>Dashboard</h2>
<p><button type="button" id="dash-start">Show live charts</button> <span id="dash-status" role="status"></span></p>
<p id="dash-summary" hidden>Served <b id="dash-served"></b> · hit ratio <b id="dash-hit-ratio"></b> ·
memory <b id="dash-memory"></b> · RSS <b id="dash-rss"></b> · store <b id="dash-store"></b></p>
<div class="charts">
<div class="chart" id="chart-requests"></div><div class="chart" id="chart-hit-ratio"></div>
<div class="chart" id="chart-latency"></div><div class="chart" id="chart-origin"></div>
<div class="chart" id="chart-transform"></div><div class="chart" id="chart-memory"></div>
<div class="chart" id="chart-store"></div><div class="chart" id="chart-rss"></div>
</div>
<table id="origin-hosts" hidden><caption>Origin hosts with the most fetches (charted window)</caption>
<thead><tr><th scope="col">Host</th><th scope="col">Fetches</th><th scope="col">Errors</th><th scope="col">Mean fetch ms</th></tr></thead>
<tbody></tbody></table>
<table id="recent-purges" hidden><caption>Recent purges (this instance)</caption>
<thead><tr><th scope="col">When (UTC)</th><th scope="col">Token</th><th scope="col">Selectors</th><th scope="col">Status</th>
<th scope="col">Tiers</th></tr></thead><tbody></tbody></table>
<table id="recent-warms" hidden><caption>Recent warm jobs (this instance)</caption>
<thead><tr><th scope="col">When (UTC)</th><th scope="col">Token</th><th scope="col">Warmed</th><th scope="col">From</th>
<th scope="col">Failures</th></tr></thead><tbody></tbody></table>
</section>`;

export const DASHBOARD_CSS = `.charts { display: grid; grid-template-columns: repeat(auto-fill, minmax(26rem, 1fr)); gap: 0.5rem; }
.chart { min-height: 12rem; min-width: 0; }
#dash-summary b { font-variant-numeric: tabular-nums; }
`;

export const DASHBOARD_JS = `'use strict';
(() => {
  const $ = (id) => document.getElementById(id);
  const MiB = 1024 * 1024;
  const COLORS = ['#1b6e2e', '#2f7fd8', '#d9822b', '#8e44ad', '#b3261e', '#555d66'];
  const orNull = (value, scale) => (value === null || value === undefined ? null : value * scale);
  // [id, title, series, log y scale]: latencies span sub-millisecond hits to second-long misses.
  const CHARTS = [
    ['chart-requests', 'Requests/s by X-Cache', [['HIT-MEMORY', (s) => s.rps['HIT-MEMORY']], ['HIT-STORE', (s) => s.rps['HIT-STORE']],
      ['MISS', (s) => s.rps.MISS], ['STALE', (s) => s.rps.STALE], ['errors', (s) => s.rps.errors]]],
    ['chart-hit-ratio', 'Hit ratio %', [['interval', (s) => orNull(s.hitRatio, 100)], ['since start', (s) => orNull(s.hitRatioOverall, 100)]]],
    ['chart-latency', 'Latency ms', [['hit p50', (s) => s.latencyMs.hitP50], ['hit p95', (s) => s.latencyMs.hitP95],
      ['miss p50', (s) => s.latencyMs.missP50], ['miss p95', (s) => s.latencyMs.missP95], ['origin fetch mean', (s) => s.origin.meanMs]], true],
    ['chart-origin', 'Origin fetches/s', [['fetches', (s) => s.origin.fetchesPerS], ['errors', (s) => s.origin.errorsPerS]]],
    ['chart-transform', 'Transforms', [['queued', (s) => orNull(s.transform && s.transform.queued, 1)],
      ['running', (s) => orNull(s.transform && s.transform.running, 1)], ['rejected/s', (s) => orNull(s.transform && s.transform.rejectedPerS, 1)]]],
    ['chart-memory', 'Memory tier MiB', [['used', (s) => s.memory.bytes / MiB], ['budget', (s) => s.memory.maxBytes / MiB]]],
    ['chart-store', 'Store', [['write queue', (s) => orNull(s.store && s.store.writeQueue, 1)], ['drops/s', (s) => orNull(s.store && s.store.droppedPerS, 1)],
      ['errors/s', (s) => orNull(s.store && s.store.errorsPerS, 1)], ['breaker open', (s) => (s.store ? Number(s.store.breaker === 'open') : null)]]],
    ['chart-rss', 'Process RSS MiB', [['RSS', (s) => s.rssBytes / MiB]]],
  ];
  const charts = {};
  let timer;
  /** The samples charted: the first poll gets the whole hour, later ones only what is newer (bounded by capacity). */
  let samples = [];

  function draw(samples) {
    const xs = samples.map((s) => s.t / 1000);
    for (const [id, title, series, log] of CHARTS) {
      const el = $(id);
      const data = [xs, ...series.map(([, read]) => samples.map(read))];
      if (!charts[id]) {
        const scales = log ? { x: { time: true }, y: { distr: 3 } } : { x: { time: true } };
        charts[id] = new uPlot({ title, width: Math.max(280, el.clientWidth), height: 190, scales,
          series: [{}, ...series.map(([label], i) => ({ label, stroke: COLORS[i % COLORS.length], width: 2 }))] }, data, el);
      } else charts[id].setData(data);
      el.dataset.series = String(series.length);
      el.dataset.points = String(xs.length);
    }
  }

  const mib = (bytes) => (bytes >= MiB ? (bytes / MiB).toFixed(1) + ' MiB' : (bytes / 1024).toFixed(1) + ' KiB');
  function set(id, value, text) {
    $(id).dataset.value = String(value);
    $(id).textContent = text;
  }

  function summarize(last) {
    if (!last) return;
    $('dash-summary').hidden = false;
    set('dash-served', last.served, String(last.served));
    set('dash-hit-ratio', last.hitRatioOverall, last.hitRatioOverall === null ? '–' : (last.hitRatioOverall * 100).toFixed(1) + ' %');
    set('dash-memory', last.memory.bytes, mib(last.memory.bytes) + ' of ' + mib(last.memory.maxBytes));
    set('dash-rss', last.rssBytes, mib(last.rssBytes));
    set('dash-store', last.store ? last.store.breaker : 'none', last.store
      ? 'breaker ' + last.store.breaker + ', ' + last.store.writeQueue + ' queued' : 'none');
  }

  function fill(tableId, rows) {
    const table = $(tableId);
    const body = table.tBodies[0];
    body.replaceChildren();
    for (const cells of rows) {
      const row = body.insertRow();
      for (const value of cells) row.insertCell().textContent = value === undefined || value === null ? '' : String(value);
    }
    table.hidden = rows.length === 0;
  }

  function hostRows(samples) {
    const totals = new Map();
    for (const s of samples) for (const h of s.origin.hosts) {
      const t = totals.get(h.host) || { fetches: 0, errors: 0, ms: 0 };
      t.fetches += h.fetches; t.errors += h.errors; t.ms += (h.meanMs || 0) * h.fetches;
      totals.set(h.host, t);
    }
    return [...totals].sort((a, b) => b[1].fetches - a[1].fetches).slice(0, 10)
      .map(([host, t]) => [host, t.fetches, t.errors, (t.ms / t.fetches).toFixed(1)]);
  }

  const when = (at) => new Date(at).toISOString().slice(0, 19).replace('T', ' ');
  const tiers = (p) => p.tiers.map((t) => t.tier + ' ' + (t.state === 'failed' ? 'NOT REACHED' : t.state)
    + (t.removed !== undefined ? ' ' + t.removed : '')).join(' · ');
  const sources = (w) => Object.entries(w.byCache).map(([cache, n]) => cache + ' ' + n).join(', ');

  let busy = false;
  async function tick() {
    if (busy) return undefined; // one poll at a time: a second would append the same samples twice
    busy = true;
    try {
      return await poll();
    } finally {
      busy = false;
    }
  }

  async function poll() {
    // call() and failure() are the admin page's own (admin.js, loaded first): the same token, the same error text.
    const result = await call('GET', '/history' + (samples.length ? '?since=' + samples[samples.length - 1].t : ''));
    if (result.status === 0) {
      $('dash-status').textContent = result.data.detail; // the API did not answer: try again later
      return schedule(5000);
    }
    if (!result.ok) {
      $('dash-status').textContent = failure(result);
      return undefined; // a wrong token: stop until the admin starts again
    }
    const data = result.data;
    samples = samples.concat(data.samples || []).slice(-data.capacity);
    $('dash-status').textContent = samples.length + ' sample(s), one every ' + data.intervalMs / 1000 + ' s (at most ' + data.capacity + ')';
    draw(samples);
    summarize(samples[samples.length - 1]);
    fill('origin-hosts', hostRows(samples));
    fill('recent-purges', data.purges.map((p) => [when(p.at), p.tokenId, JSON.stringify(p.selectors), p.status, tiers(p)]));
    fill('recent-warms', data.warms.map((w) => [when(w.at), w.tokenId, w.ok + ' of ' + w.total, sources(w),
      w.failures.map((f) => f.url + ' ' + (f.code || '')).join('; ')]));
    return schedule(Math.max(250, data.intervalMs));
  }

  function schedule(ms) {
    clearTimeout(timer);
    timer = setTimeout(() => void tick(), ms);
  }

  const start = () => {
    if ($('token').value.trim()) void tick();
  };
  $('dash-start').addEventListener('click', start);
  $('token').addEventListener('change', start);
})();
`;
