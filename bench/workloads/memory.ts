/**
 * Workload 6 — memory under load: the peak RSS (VmHWM) of every imgrelay process during workloads 1–5, against
 * 256 MiB of memory tier + 300 MiB; and the soak mode (`--soak <seconds>`), which first fills the memory tier to its
 * budget, then repeats the article page (cold then warm, new sources each time, so the tier evicts throughout) while
 * sampling RSS every few seconds.
 */
import type { Child } from '../lib/child.js';
import { closedLoop } from '../lib/client.js';
import { startImgrelay } from '../lib/contenders.js';
import { mib } from '../lib/proc.js';
import { atMost, fmt, type Section, type Table, type Target } from '../lib/report.js';
import { type Session, withChildren } from '../lib/session.js';
import { ratio } from '../lib/stats.js';
import { imgrelayPageUrls, loadPage } from './article.js';

const TIER_MIB = 256;
const BUDGET_MIB = TIER_MIB + 300;
const SAMPLE_EVERY_MS = 3000;
const MiB = 1048576;

export function peakRssSection(session: Session): Section {
  const rows = session.peaks.map((p) => [p.workload, p.process, p.memoryTierMiB === undefined ? '—' : `${p.memoryTierMiB} MiB`, fmt(p.peakMiB, 0)]);
  const imgrelayPeaks = session.peaks.filter((p) => p.memoryTierMiB === TIER_MIB).map((p) => p.peakMiB);
  const worst = imgrelayPeaks.length > 0 ? Math.max(...imgrelayPeaks) : Number.NaN;
  return {
    title: '6. Memory under load (peak RSS per process)',
    description: `VmHWM of each child when it was stopped. The target applies to imgrelay with a ${TIER_MIB} MiB memory tier.`,
    tables: [{ title: 'Peak RSS', headers: ['workload', 'process', 'memory tier', 'peak RSS MiB'], rows }],
    targets: [budgetTarget('peak RSS during 1–5', worst)],
    notes: [],
  };
}

const budgetTarget = (workload: string, peakMiB: number): Target => ({
  workload, name: `peak RSS ≤ ${TIER_MIB} MiB tier + 300 MiB`, value: peakMiB, threshold: `≤ ${BUDGET_MIB} MiB`,
  pass: atMost(peakMiB, BUDGET_MIB),
});

interface RssSample { seconds: number; rssMiB: number; tierMiB: number; arrayBuffersMiB: number; heapMiB: number; pages: number }

export async function soak(session: Session, durationS: number): Promise<Section> {
  const samples: RssSample[] = [];
  let pages = 0;
  let errors = 0;
  let fillS = 0;
  await withChildren(session, 'soak', { imgrelay: () => startImgrelay({ originPort: session.origin.port }) }, async ({ imgrelay }) => {
    fillS = await fillTier(session, imgrelay);
    const started = Date.now();
    const sample = async () => {
      const stats = await imgrelay.call<Record<'memoryTierBytes' | 'arrayBuffersBytes' | 'heapUsedBytes', number>>('stats');
      samples.push({ seconds: (Date.now() - started) / 1000, rssMiB: mib(imgrelay.memory().rssKb), pages,
        tierMiB: stats.memoryTierBytes / MiB, arrayBuffersMiB: stats.arrayBuffersBytes / MiB, heapMiB: stats.heapUsedBytes / MiB });
    };
    const timer = setInterval(() => void sample(), SAMPLE_EVERY_MS);
    session.log(`soak: ${durationS} s of article pages (cold then warm), RSS every ${SAMPLE_EVERY_MS / 1000} s`);
    try {
      for (let i = 0; Date.now() - started < durationS * 1000; i++) {
        const urls = imgrelayPageUrls(session, imgrelay, `r=soak-${i}-${started.toString(36)}`);
        errors += (await loadPage(imgrelay, urls)).sample.errors + (await loadPage(imgrelay, urls)).sample.errors;
        pages += 2;
      }
    } finally {
      clearInterval(timer);
      await sample();
    }
  });
  return soakSection(session, durationS, samples, errors, fillS);
}

const tierBytes = async (imgrelay: Child) =>
  (await imgrelay.call<Record<'memoryTierBytes', number>>('stats')).memoryTierBytes;

/**
 * Fills the memory tier to its budget before the soak, with ~1 MB originals relayed as they are (`/?<url>`, kept in
 * memory since they are what is served): article variants alone (~10 KB each) would take longer than the soak to
 * fill it, and a leak shows only once eviction runs. Returns the seconds it took.
 */
async function fillTier(session: Session, imgrelay: Child): Promise<number> {
  const started = Date.now();
  const files = session.data.cold;
  for (let batch = 0; batch < 40 && await tierBytes(imgrelay) < TIER_MIB * MiB * 0.95; batch++) {
    const urls = files.map((file) => `${imgrelay.url}/?${session.origin.imgrelayBase}/${file}?fill=${batch}`);
    await closedLoop(urls, { concurrency: 4 });
  }
  session.log(`soak: memory tier filled to ${fmt(await tierBytes(imgrelay) / MiB, 0)} MiB in ${fmt((Date.now() - started) / 1000, 1)} s`);
  return (Date.now() - started) / 1000;
}

function soakSection(session: Session, durationS: number, samples: RssSample[], errors: number, fillS: number): Section {
  // While the tier fills RSS must grow; whether it levels off is judged once eviction runs (if it got there).
  const filled = tierFull(samples);
  const steady = filled && samples.filter((s) => s.seconds >= filled.seconds).length >= 6
    ? samples.filter((s) => s.seconds >= filled.seconds) : samples;
  const growth = lastThirdGrowth(steady.map((s) => s.rssMiB));
  const span = steady === samples ? 'the whole run' : `the ${fmt(steady.length, 0)} samples after the tier filled`;
  const peak = session.peaks.filter((p) => p.workload === 'soak').map((p) => p.peakMiB)[0] ?? Number.NaN;
  const levels = Number.isFinite(growth) && growth <= 0.05;
  return {
    title: `Soak (${durationS} s of article pages)`,
    description: `The ${TIER_MIB} MiB memory tier is first filled to its budget with ~1 MB originals relayed as they are ` +
      `(${fmt(fillS, 0)} s), so the tier evicts throughout; then RSS of the imgrelay child is sampled every ` +
      `${SAMPLE_EVERY_MS / 1000} s while pages (36 requests, cold then warm) repeat with new sources. ${errors} failed requests.`,
    tables: [rssTable(samples)],
    targets: [
      budgetTarget('soak', peak),
      { workload: 'soak', name: `RSS levels off (last vs middle third of ${span})`, value: growth * 100,
        threshold: '≤ 5 % growth', pass: Number.isFinite(growth) ? levels : undefined },
    ],
    notes: [`RSS ${levels ? 'levels off' : 'keeps growing'} over ${span}: the last third's peak is ` +
      `${fmt(growth * 100, 1)} % above the middle third's.`,
      'RSS − (JS ArrayBuffers + JS heap) is native memory: libvips and the glibc allocator.',
      filled ? `The memory tier reached its ${TIER_MIB} MiB budget at ${fmt(filled.seconds, 0)} s.`
        : `The memory tier never filled (${fmt(samples.at(-1)?.tierMiB ?? Number.NaN, 0)} MiB at the end): run longer to see RSS under eviction.`],
  };
}

/** How much higher the last third's peak is than the middle third's (0.03 = 3 %); NaN with too few samples. */
export function lastThirdGrowth(values: readonly number[]): number {
  if (values.length < 3) return Number.NaN;
  const third = Math.floor(values.length / 3);
  const middle = values.slice(third, values.length - third);
  return ratio(Math.max(...values.slice(values.length - third)), Math.max(...middle)) - 1;
}

/** The first sample where the memory tier is within 5 % of its budget (eviction has begun), if any. */
const tierFull = (samples: RssSample[]) => samples.find((s) => s.tierMiB >= TIER_MIB * 0.95);

/** At most ~15 evenly spaced rows, so a long soak stays readable. */
function rssTable(samples: RssSample[]): Table {
  const step = Math.max(1, Math.ceil(samples.length / 15));
  const rows = samples.filter((_, i) => i % step === 0 || i === samples.length - 1)
    .map((s) => [fmt(s.seconds, 0), fmt(s.rssMiB, 0), fmt(s.tierMiB, 0), fmt(s.arrayBuffersMiB, 0), fmt(s.heapMiB, 0),
      fmt(s.rssMiB - s.tierMiB, 0), String(s.pages)]);
  return {
    title: 'RSS over time',
    headers: ['seconds', 'RSS MiB', 'memory tier MiB (bodies)', 'JS ArrayBuffers MiB', 'JS heap MiB', 'RSS − tier MiB', 'pages loaded'],
    rows,
  };
}
