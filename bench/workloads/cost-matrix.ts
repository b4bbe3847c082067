/**
 * Workload "costmatrix" — the bounded-cost promise (issue #14 item 1): every accepted transform of a source within
 * MAX_SOURCE_PIXELS finishes in ≤ 2 s of CPU. Tiny and huge sources, still and animated, × extreme options × every
 * output format, through imgrelay's own transformer (probe, cost estimate, pool, sharp) at its default budget, one job
 * at a time in this process: the CPU time of each job is measured with process.cpuUsage (libvips threads included),
 * so the machine's other load does not inflate it the way it would inflate wall time.
 */
import sharp from 'sharp';
import { parseConfig } from '../../src/config.js';
import { RelayError } from '../../src/errors.js';
import { silentLogger } from '../../src/logger.js';
import { resolveOutput } from '../../src/transform/negotiate.js';
import { createSharpTransformer } from '../../src/transform/sharp-transformer.js';
import type { ImageFormat, OutputFormat } from '../../src/transform/types.js';
import { parseQueryOptions } from '../../src/url/options.js';
import { atMost, fmt, type Section } from '../lib/report.js';
import type { Session } from '../lib/session.js';

const GOAL_S = 2;
const OUTPUTS: OutputFormat[] = ['jpeg', 'png', 'webp', 'avif', 'gif'];
const FULL_OPTIONS = [
  'w=4096&h=4096&fit=fill',
  'w=4096&h=4096&fit=fill&blur=250',
  'w=4096&h=4096&fit=fill&blur=100',
  'w=2048&h=2048&fit=fill&blur=150',
  'w=4096&h=4096&fit=fill&sharp=10',
  'w=4096&h=4096&fit=cover&a=attention',
  'w=400&n=-1',
  'w=4096&n=-1',
  'blur=999.1',
  '',
];
const QUICK_OPTIONS = ['w=4096&h=4096&fit=fill', 'w=4096&h=4096&fit=fill&blur=250', 'w=400&n=-1', 'w=4096&n=-1'];

interface Source {
  name: string;
  bytes: Uint8Array;
  format: ImageFormat;
}

interface Outcome {
  source: string;
  options: string;
  output: OutputFormat;
  cpuS: number;
  /** The refusal's code, or undefined when the job was accepted and ran. */
  refused?: string;
  detail?: string;
  timedOut?: boolean;
}

const noise = (width: number, height: number) =>
  sharp({ create: { width, height, channels: 3, background: '#000', noise: { type: 'gaussian', mean: 128, sigma: 60 } } });

/** Sources an attacker would pick: the smallest possible, the largest allowed, long and wide animations, all noise. */
async function sources(quick: boolean): Promise<Source[]> {
  const tiny = await sharp({ create: { width: 1, height: 1, channels: 3, background: '#808080' } }).png().toBuffer();
  const side = quick ? 4000 : 7000; // 7000² = 49 MP, just within the default MAX_SOURCE_PIXELS (50 MP)
  const huge = await noise(side, side).jpeg({ quality: 90 }).toBuffer();
  const frames = 1000;
  const strip = Buffer.alloc(frames * 3);
  for (let f = 0; f < frames; f++) strip.set(f % 2 ? [255, 0, 0] : [0, 0, 255], f * 3);
  const longGif = await sharp(strip, { raw: { width: 1, height: frames, channels: 3, pageHeight: 1 } }).gif().toBuffer();
  const wideFrames = 24;
  const wide = await noise(320, 240 * wideFrames).raw().toBuffer();
  const wideWebp = await sharp(wide, { raw: { width: 320, height: 240 * wideFrames, channels: 3, pageHeight: 240 } })
    .webp({ effort: 0, quality: 80 }).toBuffer();
  return [
    { name: '1×1 PNG', bytes: tiny, format: 'png' },
    { name: `${side}×${side} noise JPEG`, bytes: huge, format: 'jpeg' },
    { name: '1,000-frame 1×1 GIF', bytes: longGif, format: 'gif' },
    { name: `${wideFrames}-frame 320×240 noise WebP`, bytes: wideWebp, format: 'webp' },
  ].map((s) => ({ ...s, bytes: new Uint8Array(s.bytes) })) as Source[];
}

export async function costMatrix(session: Session): Promise<Section> {
  const quick = session.settings.mode === 'quick';
  const config = parseConfig({ IMGRELAY_WORKERS: '1', IMGRELAY_QUEUE_TIMEOUT_MS: '600000' });
  const transformer = createSharpTransformer(config, { logger: silentLogger });
  const outcomes: Outcome[] = [];
  for (const source of await sources(quick)) {
    session.log(`cost matrix: ${source.name}`);
    for (const options of quick ? QUICK_OPTIONS : FULL_OPTIONS) {
      for (const output of OUTPUTS) outcomes.push(await runCase(transformer, source, options, output));
    }
  }
  return report(outcomes, config.transformBudgetMs, config.transformTimeoutS);
}

async function runCase(transformer: ReturnType<typeof createSharpTransformer>, source: Source, options: string,
  output: OutputFormat): Promise<Outcome> {
  const spec = parseQueryOptions(new URLSearchParams(`${options}&output=${output}`)).spec;
  const job = { source: source.bytes, sourceFormat: source.format, spec, output: resolveOutput(spec, 'base', source.format) };
  const before = process.cpuUsage();
  try {
    transformer.check?.(spec);
    await transformer.transform(job);
    return { source: source.name, options, output, cpuS: cpuSince(before) };
  } catch (error) {
    const relay = error instanceof RelayError ? error : undefined;
    // Accepted, ran, and overran its deadline: an accepted case (its CPU counts against the goal), not a refusal.
    if (relay?.code === 'E_TRANSFORM_TIMEOUT') return { source: source.name, options, output, cpuS: cpuSince(before), timedOut: true };
    return { source: source.name, options, output, cpuS: cpuSince(before), refused: relay?.code ?? String(error), detail: relay?.detail };
  }
}

const cpuSince = (before: NodeJS.CpuUsage) => {
  const used = process.cpuUsage(before);
  return (used.user + used.system) / 1e6;
};

function report(outcomes: Outcome[], budgetMs: number, timeoutS: number): Section {
  const accepted = outcomes.filter((o) => !o.refused);
  const refused = outcomes.filter((o) => o.refused);
  const worst = [...accepted].sort((a, b) => b.cpuS - a.cpuS);
  const label = (o: Outcome) => `${o.source} ?${o.options || '(none)'}&output=${o.output}`;
  const worstS = worst[0]?.cpuS ?? Number.NaN;
  process.stdout.write(`cost matrix: ${accepted.length} accepted, ${refused.length} refused; worst accepted ` +
    `${fmt(worstS, 2)} s CPU (${worst[0] ? label(worst[0]) : 'none'})\n`);
  return {
    title: 'Bounded cost: the transform cost matrix',
    description: `Each case runs alone through imgrelay's transformer at its defaults (budget ${budgetMs} ms of estimated ` +
      `CPU, TRANSFORM_TIMEOUT_S ${timeoutS}); CPU seconds from process.cpuUsage, libvips threads included. ` +
      'Refusals (400 unaffordable option, 422 over budget) happen from the header, before any slot is taken.',
    tables: [
      { title: 'Costliest accepted cases', headers: ['case', 'CPU s'],
        rows: worst.slice(0, 10).map((o) => [label(o), fmt(o.cpuS, 2)]) },
      { title: 'Refused cases', headers: ['case', 'code', 'CPU s spent refusing', 'detail'],
        rows: refused.map((o) => [label(o), o.refused!, fmt(o.cpuS, 3), (o.detail ?? '').slice(0, 120)]) },
    ],
    targets: [{ workload: 'cost matrix', name: 'worst accepted transform, CPU ms', value: worstS * 1000,
      threshold: `≤ ${GOAL_S * 1000} ms`, pass: atMost(worstS, GOAL_S) }],
    notes: [`${accepted.length} cases accepted, ${refused.length} refused, of ${outcomes.length}.`,
      ...(accepted.some((o) => o.timedOut)
        ? ['Some accepted jobs ran past TRANSFORM_TIMEOUT_S: the estimate is too low for them (see docs/bounded-cost.md).'] : [])],
  };
}
