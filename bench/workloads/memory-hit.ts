/**
 * Workload 2 — memory hit: one ~60 KB image (legacy relay form) hit with wrk -t1 -c32 against the memory tier.
 * Limit: a bare node:http server answering the same bytes with the same headers from memory. Peer: ipx 3.1.1
 * (which caches nothing, so each of its "hits" is a fetch + transform).
 */
import { compare } from '../lib/compare.js';
import { replayableHeaders, startImgrelay, startIpx, startStatic } from '../lib/contenders.js';
import { getUntil } from '../lib/prime.js';
import { atLeast, atMost, type Section } from '../lib/report.js';
import { interleave } from '../lib/rounds.js';
import { wrkSample } from '../lib/samplers.js';
import { type Session, withChildren } from '../lib/session.js';
import { wrkLoad } from '../lib/settings.js';
import { profileHits } from './profile-hit.js';

export async function memoryHit(session: Session): Promise<Section> {
  const section: Section = {
    title: '2. Memory hit (~60 KB image, wrk -t1 -c32)',
    description: 'The legacy form `/?http://origin.test/hit.jpg` served from the memory tier, against a bare ' +
      '`node:http` server sending the same bytes and headers from memory (the limit) and ipx 3.1.1 ' +
      '(`/_/http://127.0.0.1:<port>/hit.jpg`; ipx has no cache, so it fetches and re-encodes every time).',
    tables: [], targets: [], notes: [],
  };
  const { settings } = session;
  const load = (round: number) => wrkLoad(settings, round);
  const path = `/?${session.origin.imgrelayBase}/${session.data.hit}`;
  await withChildren(session, 'memory hit', {
    imgrelay: () => startImgrelay({ originPort: session.origin.port }),
  }, async ({ imgrelay }) => {
    await getUntil(imgrelay.url + path, 'MISS');
    const hit = await getUntil(imgrelay.url + path, 'HIT-MEMORY');
    const headers = replayableHeaders(hit.headers);
    section.notes.push(`Body ${hit.body.length} bytes; the bare server replays imgrelay's ${Object.keys(headers).length} response headers.`);
    await withChildren(session, 'memory hit', {
      bare: () => startStatic('memory', session.file(session.data.hit), headers),
      ipx: startIpx,
    }, async ({ bare, ipx }) => {
      session.log(`memory hit: ${settings.rounds} rounds × ${settings.wrkSeconds} s per contender`);
      const samples = await interleave(settings.rounds, {
        imgrelay: async (round) => (await wrkSample(imgrelay, imgrelay.url + path, load(round))).sample,
        'node:http (memory)': async (round) => (await wrkSample(bare, `${bare.url}/`, load(round))).sample,
        'ipx 3.1.1': async (round) => (await wrkSample(ipx, `${ipx.url}/_/${session.origin.ipxBase}/${session.data.hit}`, load(round))).sample,
      }, session.roundLogger('req/s'));
      const comparison = compare('Memory hit', samples, 'imgrelay', 'req/s');
      section.tables.push(comparison.table);
      const rate = comparison.rateRatio['node:http (memory)'];
      const cpu = comparison.cpuRatio['node:http (memory)'];
      section.targets.push(
        { workload: 'memory hit', name: 'throughput vs bare node:http', value: rate, threshold: '≥ 0.75×', pass: atLeast(rate, 0.75),
          range: comparison.rateRange['node:http (memory)'] },
        { workload: 'memory hit', name: 'CPU per hit vs bare node:http', value: cpu, threshold: '≤ 1.30×', pass: atMost(cpu, 1.3) },
      );
    });
  });
  if (settings.profile) {
    section.tables.push(...await profileHits(session, { label: 'memory hit', paths: [path], expect: 'HIT-MEMORY', load: load(0) }));
  }
  return section;
}
