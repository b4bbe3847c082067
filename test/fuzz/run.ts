/**
 * `npm run fuzz -- --seed N --count M` runs cases 0…M-1 of seed N (default: a random seed, 2000 cases);
 * `--case K` (repeatable) replays exactly those cases of seed N. Prints every failure with the command that replays
 * it, then a summary; exit 1 when anything failed.
 */
import { parseArgs } from 'node:util';
import { runFuzz } from './harness.js';

const { values } = parseArgs({ options: {
  seed: { type: 'string' }, count: { type: 'string' }, case: { type: 'string', multiple: true },
  'peak-rss': { type: 'string' }, 'steady-rss': { type: 'string' },
} });
const seed = values.seed === undefined ? Math.floor(Math.random() * 2 ** 31) : Number(values.seed);
const cases = values.case?.map(Number);
const count = Number(values.count ?? 2000);
if (!Number.isInteger(seed) || !Number.isInteger(count) || cases?.some((c) => !Number.isInteger(c) || c < 0)) {
  process.stderr.write('usage: npm run fuzz -- [--seed N] [--count M | --case K …] [--peak-rss MiB] [--steady-rss MiB]\n');
  process.exit(2);
}
process.stdout.write(`fuzz: seed ${seed}, ${cases ? `case(s) ${cases.join(', ')}` : `${count} cases`}\n`);
const started = performance.now();
const report = await runFuzz({ seed, count, cases, log: (line) => process.stdout.write(`${line}\n`),
  progress: (done, rss) => process.stdout.write(`  ${done} cases, RSS ${rss.toFixed(0)} MiB\n`),
  peakRssBoundMiB: values['peak-rss'] ? Number(values['peak-rss']) : undefined,
  steadyRssBoundMiB: values['steady-rss'] ? Number(values['steady-rss']) : undefined });
const seconds = ((performance.now() - started) / 1000).toFixed(1);
process.stdout.write(`\n${report.cases} cases in ${seconds} s, RSS peak ${report.peakRssMiB.toFixed(0)} MiB, `
  + `at the end ${report.endRssMiB.toFixed(0)} MiB, slowest `
  + `${report.slowestMs.toFixed(0)} ms${report.crashed ? ', THE SERVICE CRASHED' : ''}\n`);
for (const [outcome, n] of Object.entries(report.outcomes).sort()) process.stdout.write(`  ${outcome}: ${n}\n`);
process.stdout.write(report.failures.length ? `${report.failures.length} failure(s); replay with the commands above\n` : 'no failures\n');
process.exit(report.failures.length ? 1 : 0);
