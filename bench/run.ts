/**
 * The benchmark suite: `npm run bench` (full), `npm run bench:quick` (CI smoke, < 2 min).
 * Flags: --quick, --rounds N, --only cold,hit,store,coalesce,article,dns,sockets,costmatrix,attack,hostile,
 *        --soak SECONDS, --profile, --out FILE (default BENCHMARKS.md), --no-write. `hostile` (hostile-mix soak)
 *        runs only when named.
 * Writes BENCHMARKS.md and prints the same tables to stdout; progress goes to stderr.
 * Exits 1 when a workload could not run at all (a missed target is a result, not a failure).
 */
import { writeFileSync } from 'node:fs';
import { buildServers } from './lib/child.js';
import { prepareData } from './lib/data.js';
import { machineLines, versionLines } from './lib/machine.js';
import { startBenchOrigin } from './lib/origin.js';
import { renderMarkdown, type Section, targetsTable, textTable } from './lib/report.js';
import { Session } from './lib/session.js';
import { parseArgs, type Settings, wants } from './lib/settings.js';
import { wrkAvailable } from './lib/wrk.js';
import { articlePage } from './workloads/article.js';
import { coalescing } from './workloads/coalescing.js';
import { attack } from './workloads/attack.js';
import { coldMiss } from './workloads/cold-miss.js';
import { costMatrix } from './workloads/cost-matrix.js';
import { dnsBlackHole } from './workloads/dns.js';
import { memoryHit } from './workloads/memory-hit.js';
import { peakRssSection, soak } from './workloads/memory.js';
import { socketPressure } from './workloads/sockets.js';
import { storeHit } from './workloads/store-hit.js';
import { hostileMix } from './workloads/hostile-mix.js';

const WORKLOADS: [id: string, run: (session: Session) => Promise<Section>][] = [
  ['cold', coldMiss], ['hit', memoryHit], ['store', storeHit], ['coalesce', coalescing], ['article', articlePage],
  ['dns', dnsBlackHole], ['sockets', socketPressure], ['costmatrix', costMatrix], ['attack', attack],
  ['hostile', hostileMix],
];

/** Workloads that run only when named in --only: the hostile-mix soak takes minutes per allocator candidate. */
const OPT_IN = new Set(['hostile']);
const selected = (settings: Settings, id: string) => wants(settings, id) && (!OPT_IN.has(id) || Boolean(settings.only?.has(id)));

async function main(): Promise<void> {
  const settings = parseArgs(process.argv.slice(2));
  if (!(await wrkAvailable())) throw new Error('wrk is missing: apt-get install -y wrk');
  buildServers();
  const startedAt = new Date();
  const data = await prepareData(Math.max(...Object.values(settings.coldPhotos)));
  const origin = await startBenchOrigin(data.root, [...data.cold, ...data.article, data.hit]);
  const session = new Session(settings, data, origin);
  const sections: Section[] = [];
  let failed = 0;
  try {
    for (const [id, run] of WORKLOADS.filter(([id]) => selected(settings, id))) {
      const section = await runWorkload(session, id, run);
      if (!section.ok) failed++;
      sections.push(section.section);
    }
    sections.push(peakRssSection(session));
    if (settings.soakS > 0) sections.push((await runWorkload(session, 'soak', (s) => soak(s, settings.soakS))).section);
  } finally {
    await origin.close();
  }
  publish(settings, sections, startedAt);
  process.exitCode = failed > 0 ? 1 : 0;
}

async function runWorkload(session: Session, id: string, run: (session: Session) => Promise<Section>) {
  const started = Date.now();
  try {
    const section = await run(session);
    session.log(`${id} done in ${((Date.now() - started) / 1000).toFixed(0)} s`);
    return { ok: true, section };
  } catch (error) {
    const reason = (error instanceof Error ? error.message : String(error)).split('\n')[0].slice(0, 160);
    session.log(`${id} FAILED: ${reason}`);
    const section: Section = { title: `${id}: not run`, description: `not run: ${reason}`, tables: [], notes: [],
      targets: [{ workload: id, name: 'workload', value: Number.NaN, threshold: '', pass: undefined, note: `not run: ${reason}` }] };
    return { ok: false, section };
  }
}

function publish(settings: Settings, sections: Section[], startedAt: Date): void {
  const command = commandLine(settings);
  const durationS = (Date.now() - startedAt.getTime()) / 1000;
  const markdown = renderMarkdown({ command, mode: settings.mode, machine: machineLines(), versions: versionLines(),
    sections, startedAt, durationS });
  if (settings.output) writeFileSync(settings.output, markdown);
  const tables = sections.flatMap((s) => s.tables.map(textTable));
  process.stdout.write(`${[...tables, textTable(targetsTable(sections.flatMap((s) => s.targets)))].join('\n\n')}\n`);
  if (settings.output) process.stdout.write(`\nwritten: ${settings.output}\n`);
}

function commandLine(settings: Settings): string {
  const script = settings.mode === 'quick' ? 'npm run bench:quick' : 'npm run bench';
  const rest = process.argv.slice(2).filter((arg) => arg !== '--quick').join(' ');
  return rest ? `${script} -- ${rest}` : script;
}

main().catch((error) => {
  process.stderr.write(`bench failed: ${error instanceof Error ? error.stack : String(error)}\n`);
  process.exit(1);
});
