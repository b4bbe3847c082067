/**
 * Workload 1 — cold miss: distinct 2000×1500 photos fetched from the loopback origin and turned into 800w
 * JPEG, WebP and AVIF at q80 (AVIF at imgrelay's default effort), closed loop with 4 clients. Against raw sharp
 * (2 pipelines, the limit), the I/O floor (fetch + the same sharp + write-behind to disk, no framework: what any
 * caching server must at least do) and ipx 3.1.1 (the peer). Every round uses new source URLs, so imgrelay misses.
 */
import type { Child } from '../lib/child.js';
import { headerValue } from '../lib/client.js';
import { type Comparison, compare } from '../lib/compare.js';
import { startImgrelay, startIoFloor, startIpx, startRawSharp } from '../lib/contenders.js';
import { type EncodeSpec, floorPath, imgrelayPath, ipxPath, specLabel } from '../lib/encode.js';
import { atLeast, type Section, type Target } from '../lib/report.js';
import { interleave, type Sample } from '../lib/rounds.js';
import { childRunSample, loopSample } from '../lib/samplers.js';
import { type Session, withChildren } from '../lib/session.js';

/**
 * Twice the pipelines: each HTTP request also spends time fetching the source and sending the answer, during which
 * its pool slot would idle with only 2 clients. With 4, both servers' transform slots stay busy, which is what a
 * CDN pulling many images at once sees, and both HTTP servers (imgrelay, ipx) get the same load.
 */
const CLIENTS = 4;
const SPECS: EncodeSpec[] = [
  { format: 'jpeg', width: 800, quality: 80 },
  { format: 'webp', width: 800, quality: 80 },
  { format: 'avif', width: 800, quality: 80 },
];

export async function coldMiss(session: Session): Promise<Section> {
  const section: Section = {
    title: `1. Cold miss (2000×1500 photo → 800w, ${CLIENTS} concurrent clients)`,
    description: 'Distinct photos from a loopback origin; each round requests new source URLs, so every imgrelay ' +
      'request is a full miss (fetch, decode, resize, encode, store). Raw sharp decodes the same files from memory ' +
      'with `sharp.concurrency(1)` and 2 pipelines (the limit). The I/O floor (bench/servers/io-floor.ts) is a ' +
      'bare node:http server that fetches the source with undici, runs the same sharp pipeline 2 at a time, answers ' +
      'and writes source and result to disk: the bytes every caching server must move, and nothing else. ipx ' +
      'fetches from the same origin. The origin and the load generator share the same 2 cores with the server ' +
      'under test (not with raw sharp, which needs neither).',
    tables: [], targets: [], notes: [],
  };
  await withChildren(session, 'cold miss', {
    imgrelay: () => startImgrelay({ originPort: session.origin.port }),
    raw: startRawSharp,
    floor: startIoFloor,
    ipx: startIpx,
  }, async (children) => {
    for (const spec of SPECS) await measureSpec(session, children, spec, section);
    section.notes.push(`AVIF: imgrelay and raw sharp encode at imgrelay's defaults (effort ${children.raw.info.avifEffort}, ` +
      `q80 mapped to AVIF quality ${children.raw.info.avifQuality80}); ipx encodes AVIF quality 80 at sharp's default ` +
      `effort 4, so the AVIF ratio against ipx compares different work (and ipx gets ${session.settings.ipxAvifPhotos} of ` +
      `the ${session.settings.coldPhotos.avif} photos per round).`);
  });
  return section;
}

async function measureSpec(session: Session, children: { imgrelay: Child; raw: Child; floor: Child; ipx: Child }, spec: EncodeSpec,
  section: Section): Promise<void> {
  const files = session.data.cold.slice(0, session.settings.coldPhotos[spec.format]);
  const ipxFiles = spec.format === 'avif' ? files.slice(0, session.settings.ipxAvifPhotos) : files;
  const tag = (round: number) => `r=${spec.format}-${round}-${Date.now().toString(36)}`;
  const wrongCache: string[] = [];
  session.log(`cold miss ${specLabel(spec)}: ${files.length} photos × ${session.settings.rounds} rounds`);
  const samples = await interleave(session.settings.rounds, {
    imgrelay: async (round) => {
      const urls = files.map((f) => children.imgrelay.url + imgrelayPath(`${session.origin.imgrelayBase}/${f}?${tag(round)}`, spec));
      const { sample, result } = await loopSample(children.imgrelay, urls, { concurrency: CLIENTS });
      wrongCache.push(...result.exchanges.map((e) => headerValue(e, 'x-cache')).filter((v) => v !== 'MISS'));
      return sample;
    },
    'raw sharp': () => rawSharpRound(children.raw, files.map((f) => session.file(f)), spec),
    'I/O floor': async (round) => {
      const urls = files.map((f) => children.floor.url + floorPath(`${session.origin.ipxBase}/${f}?${tag(round)}`, spec));
      return (await loopSample(children.floor, urls, { concurrency: CLIENTS })).sample;
    },
    'ipx 3.1.1': async (round) => {
      const urls = ipxFiles.map((f) => children.ipx.url + ipxPath(`${session.origin.ipxBase}/${f}?${tag(round)}`, spec));
      return (await loopSample(children.ipx, urls, { concurrency: CLIENTS })).sample;
    },
  }, session.roundLogger('ops/s'));
  const comparison = compare(specLabel(spec), samples, 'imgrelay', 'ops/s');
  section.tables.push(comparison.table);
  section.targets.push(...coldTargets(spec, comparison));
  section.notes.push(boundsNote(spec, comparison.rateRatio));
  if (wrongCache.length > 0) {
    section.notes.push(`${specLabel(spec)}: ${wrongCache.length} imgrelay answers were not X-Cache: MISS ` +
      `(${[...new Set(wrongCache)].join(', ')}).`);
  }
}

async function rawSharpRound(raw: Child, files: string[], spec: EncodeSpec): Promise<Sample> {
  await raw.call('load', files);
  return childRunSample(raw, 'run', { files, spec, jobs: 2 });
}

function coldTargets(spec: EncodeSpec, { rateRatio, rateRange }: Comparison): Target[] {
  const workload = `cold miss ${specLabel(spec)}`;
  const target = (name: string, contender: string, threshold: string, min: number, bounded: boolean): Target => {
    const bound = floorVs(rateRatio, contender);
    return {
      workload, name, value: rateRatio[contender], threshold, pass: atLeast(rateRatio[contender], min), range: rateRange[contender],
      bound: bounded ? { value: bound, by: 'the I/O floor', pass: atLeast(bound, min) } : undefined,
    };
  };
  return [
    target('throughput vs raw sharp', 'raw sharp', '≥ 0.90×', 0.9, true),
    target('throughput vs the I/O floor', 'I/O floor', '≥ 0.90×', 0.9, false),
    // ipx encodes AVIF at another effort: there the floor and ipx do different work, so no common bound.
    target('throughput vs ipx', 'ipx 3.1.1', '≥ 1.25×', 1.25, spec.format !== 'avif'),
  ];
}

/** The I/O floor's rate ÷ `contender`'s: the ratios are imgrelay ÷ contender, so this is ratio[contender] ÷ ratio[floor]. */
const floorVs = (ratios: Record<string, number>, contender: string) => ratios[contender] / ratios['I/O floor'];

/**
 * What the run says any server could reach: the I/O floor's share of raw sharp (the rest goes to moving the bytes)
 * and raw sharp's own lead over ipx (no server that runs the same encoder settings can lead ipx by more).
 */
function boundsNote(spec: EncodeSpec, ratios: Record<string, number>): string {
  const floorVsRaw = floorVs(ratios, 'raw sharp');
  const floor = `${specLabel(spec)}: the I/O floor itself reached ${floorVsRaw.toFixed(2)}× raw sharp's rate (that much ` +
    'of the limit is left, for any server, once the source is fetched and the result stored)';
  if (spec.format === 'avif') return `${floor}.`; // ipx encodes AVIF at another effort: no common bound
  const rawVsIpx = ratios['ipx 3.1.1'] / ratios['raw sharp'];
  const floorVsIpx = floorVs(ratios, 'ipx 3.1.1');
  return `${floor}; raw sharp reached ${rawVsIpx.toFixed(2)}× ipx's rate and the floor ${floorVsIpx.toFixed(2)}× (the most ` +
    'a server with the same encoder settings can lead ipx by, without and with the I/O).';
}
