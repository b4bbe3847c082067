// Bundles imgrelay's rewrite (../src/migrate/hexo-filter.ts with htmlparser2 and yaml) into lib/hexo-imgrelay.cjs:
// one CommonJS file with no dependencies, so the plugin works wherever hexo loads it (hexo plugins are CommonJS).
// `node build.mjs [outdir]`; the test builds into a temporary copy of this folder.
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const here = dirname(fileURLToPath(import.meta.url));

export async function buildPlugin(outDir = join(here, 'lib')) {
  await build({
    entryPoints: [join(here, '../src/migrate/hexo-filter.ts')],
    outfile: join(outDir, 'hexo-imgrelay.cjs'),
    bundle: true, platform: 'node', format: 'cjs', target: 'node18', logLevel: 'warning',
  });
}

if (process.argv[1] === fileURLToPath(import.meta.url)) await buildPlugin(process.argv[2]);
