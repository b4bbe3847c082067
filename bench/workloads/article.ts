/**
 * Workload 5 — an article page: 12 images (~1024 px originals) × 3 widths, `output=auto` with Chromium's
 * Accept, fetched over 6 connections like a browser. Each round loads the page cold (new source URLs) then warm.
 * ipx gets the same page (f_auto) once per round for comparison; it has no cache, so cold = warm for it.
 */
import type { Child } from '../lib/child.js';
import { headerValue } from '../lib/client.js';
import { startImgrelay, startIpx } from '../lib/contenders.js';
import { fmt, fmtRatio, type Section, type Table } from '../lib/report.js';
import { type Contender, interleave, type Sample, summarise } from '../lib/rounds.js';
import { loopSample } from '../lib/samplers.js';
import { type Session, withChildren } from '../lib/session.js';
import { median, pairedRatio } from '../lib/stats.js';

export const CHROMIUM_ACCEPT = 'image/avif,image/webp,image/apng,image/svg+xml,image/*,*/*;q=0.8';
export const ARTICLE_WIDTHS = [360, 720, 1024];
const CONNECTIONS = 6;

export interface PageLoad { sample: Sample; pageMs: number; types: Map<string, number>; xCache: Map<string, number> }

/** Loads the whole page once through `server` (6 connections, Chromium's Accept), tallying what came back. */
export async function loadPage(server: Child, urls: readonly string[]): Promise<PageLoad> {
  const { sample, result } = await loopSample(server, urls, { concurrency: CONNECTIONS, headers: { accept: CHROMIUM_ACCEPT } });
  const tally = (header: string) => {
    const counts = new Map<string, number>();
    for (const exchange of result.exchanges) {
      const value = headerValue(exchange, header);
      counts.set(value, (counts.get(value) ?? 0) + 1);
    }
    return counts;
  };
  return { sample, pageMs: result.elapsedMs, types: tally('content-type'), xCache: tally('x-cache') };
}

export function imgrelayPageUrls(session: Session, imgrelay: Child, tag: string): string[] {
  return session.data.article.flatMap((file) => ARTICLE_WIDTHS.map((w) => `${imgrelay.url}/?${new URLSearchParams({
    url: `${session.origin.imgrelayBase}/${file}?${tag}`, w: String(w), output: 'auto' })}`));
}

function ipxPageUrls(session: Session, ipx: Child, tag: string): string[] {
  return session.data.article.flatMap((file) => ARTICLE_WIDTHS.map((w) =>
    `${ipx.url}/w_${w}&f_auto/${session.origin.ipxBase}/${file}?${tag}`));
}

export async function articlePage(session: Session): Promise<Section> {
  const section: Section = {
    title: '5. Article page (12 images × 3 widths, output=auto, Chromium Accept, 6 connections)',
    description: `Widths ${ARTICLE_WIDTHS.join(', ')}; 36 requests per page. "cold" = new source URLs (fetch + transform ` +
      'each), "warm" = the same page again right after (memory tier).',
    tables: [], targets: [], notes: [],
  };
  const pages: Record<string, PageLoad[]> = { 'imgrelay cold': [], 'imgrelay warm': [] };
  if (session.settings.articleIpx) pages['ipx 3.1.1'] = [];
  else section.notes.push('ipx not loaded in this mode (its AVIF page takes ~25 s here); see the full run.');
  await withChildren(session, 'article page', {
    imgrelay: () => startImgrelay({ originPort: session.origin.port }),
    ...(session.settings.articleIpx ? { ipx: startIpx } : {}),
  }, async ({ imgrelay, ipx }: { imgrelay: Child; ipx?: Child }) => {
    let urls: string[] = [];
    // Round -1 is interleave's warm-up: measured like the others but not recorded.
    const record = (name: string, round: number, load: PageLoad) => {
      if (round >= 0) pages[name].push(load);
      return load.sample;
    };
    const contenders: Record<string, Contender> = {
      'imgrelay cold': async (round) => {
        urls = imgrelayPageUrls(session, imgrelay, `r=page-${round}-${Date.now().toString(36)}`);
        return record('imgrelay cold', round, await loadPage(imgrelay, urls));
      },
      'imgrelay warm': async (round) => record('imgrelay warm', round, await loadPage(imgrelay, urls)),
    };
    // ipx's AVIF is slow (effort 4): its warm-up (round -1) loads only the first image's three widths.
    if (ipx) contenders['ipx 3.1.1'] = async (round) => {
      const ipxUrls = ipxPageUrls(session, ipx, `r=ipxpage-${round}-${Date.now().toString(36)}`);
      return round < 0 ? (await loadPage(ipx, ipxUrls.slice(0, 3))).sample : record('ipx 3.1.1', round, await loadPage(ipx, ipxUrls));
    };
    await interleave(session.settings.rounds, contenders, session.roundLogger('req/s'));
  });
  section.tables.push(pageTable(pages));
  return section;
}

function pageTable(pages: Record<string, PageLoad[]>): Table {
  const cold = pages['imgrelay cold'].map((p) => p.pageMs);
  const rows = Object.entries(pages).map(([name, loads]) => {
    const summary = summarise(loads.map((l) => l.sample));
    const last = loads[loads.length - 1];
    return [name, fmt(median(loads.map((l) => l.pageMs)), 0), fmt(summary.p50Ms, 1), fmt(summary.cpuMsPerOp, 1),
      fmtRatio(pairedRatio(loads.map((l) => l.pageMs), cold)), describe(last?.types), describe(last?.xCache),
      String(summary.errors)];
  });
  return {
    title: 'Page loads (medians over rounds)',
    headers: ['contender', 'page ms', 'request p50 ms', 'server CPU ms/req', 'page time ÷ imgrelay cold',
      'content types (last round)', 'X-Cache (last round)', 'errors'],
    rows,
  };
}

const describe = (tally?: Map<string, number>) =>
  (tally ? [...tally].map(([value, count]) => `${value || '(none)'} ×${count}`).join(', ') : 'n/a');
