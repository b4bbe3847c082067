/**
 * Fuzzing in CI (issue #16 item 5): mutants of every fixture (truncated, bit-flipped, noised, chunks duplicated,
 * garbage inserted, width/height fields set to extremes) through the whole running service on every output format and
 * the legacy relay, with a fixed seed. Every answer is an image of the asked format or a 4xx problem+json within the
 * deadline; no 5xx, no crash, RSS under its bound. `npm run fuzz -- --seed N --count M` runs thousands; a failure here
 * prints the command that replays its case.
 */
import { describe, expect, it } from 'vitest';
import { PEAK_RSS_BOUND_MIB, runFuzz, STEADY_RSS_BOUND_MIB } from './fuzz/harness.js';
import { fuzzCase, loadFixtures, MUTATION_NAMES, OUTPUTS } from './fuzz/mutate.js';

const SEED = 16;
/** Six passes over every (mutation × output) pair. */
const CASES = MUTATION_NAMES.length * OUTPUTS.length * 6;

describe('fuzzing', () => {
  it('a case is the same bytes whether run in a sequence or replayed alone', () => {
    const fixtures = loadFixtures();
    const first = Array.from({ length: 40 }, (_, i) => fuzzCase(SEED, i, fixtures));
    const again = fuzzCase(SEED, 37, fixtures);
    expect(Buffer.from(again.bytes).equals(Buffer.from(first[37].bytes))).toBe(true);
    expect(new Set(first.map((c) => c.mutations[0]))).toEqual(new Set(MUTATION_NAMES));
    expect(first.filter((c) => !Buffer.from(c.bytes).equals(Buffer.from(fixtures.find((f) => f.name === c.fixture)!.bytes))))
      .toHaveLength(40); // every case really mutated its fixture
  });

  it(`mutated images on every output: an image or a 4xx problem+json, never a 5xx, a crash, or RSS over `
    + `${PEAK_RSS_BOUND_MIB} MiB (${STEADY_RSS_BOUND_MIB} MiB once done)`,
    async () => {
      const lines: string[] = [];
      const report = await runFuzz({ seed: SEED, count: CASES, log: (line) => lines.push(line) });
      expect(report.crashed).toBe(false);
      expect(report.cases).toBe(CASES);
      expect(report.failures.map((f) => `${f.problem} (replay: ${f.replay})`), lines.join('\n')).toEqual([]);
      expect(report.peakRssMiB).toBeLessThan(PEAK_RSS_BOUND_MIB);
      expect(report.endRssMiB).toBeGreaterThan(0); // it was read
      expect(report.endRssMiB).toBeLessThan(STEADY_RSS_BOUND_MIB);
      // The mutants reached the decoders and encoders, not only the sniffer: some still became images of each format.
      for (const output of OUTPUTS) expect(report.outcomes[`200 ${output}`] ?? 0, output).toBeGreaterThan(0);
      expect(report.outcomes['422 E_IMAGE_INVALID']).toBeGreaterThan(0);
    }, 300_000);
});
