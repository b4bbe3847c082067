/** What the numbers were measured on: CPU, cores, memory, and the versions of everything in the path. */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { availableParallelism, totalmem } from 'node:os';
import sharp from 'sharp';

export function machineLines(): string[] {
  const cpuinfo = safeRead('/proc/cpuinfo');
  const model = /^model name\s*:\s*(.+)$/m.exec(cpuinfo)?.[1] ?? 'unknown CPU';
  return [
    `Machine: ${availableParallelism()} CPUs (nproc), ${model}, ${(totalmem() / 2 ** 30).toFixed(1)} GiB RAM, ` +
      `${process.platform} ${safeRead('/proc/sys/kernel/osrelease').trim()}`,
  ];
}

export function versionLines(): string[] {
  const wrkVersion = (() => {
    try {
      return execFileSync('wrk', ['--version'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }).split('\n')[0];
    } catch (error) {
      return String((error as { stdout?: string }).stdout ?? 'wrk missing').split('\n')[0];
    }
  })();
  return [
    `Versions: node ${process.version}, sharp ${sharp.versions.sharp}, libvips ${sharp.versions.vips}, ` +
      `ipx ${packageVersion('ipx')}, hono ${packageVersion('hono')}, @20minutes/s3rver ${packageVersion('@20minutes/s3rver')}, ` +
      `${wrkVersion.replace(/\s*Copyright.*$/, '').trim()}`,
    'Processes: every server runs in its own child (compiled by tsc as `npm run build` compiles the service, plain ' +
      '`node`, `MALLOC_ARENA_MAX=2`; imgrelay also under the allocator `npm start` picks, bin/malloc-env.sh); CPU time and RSS are ' +
      'read from that child\'s /proc (all threads, libvips included).',
  ];
}

/** Read from node_modules directly: some packages (ipx) do not export their package.json. */
function packageVersion(name: string): string {
  const text = safeRead(new URL(`../../node_modules/${name}/package.json`, import.meta.url).pathname);
  return text ? (JSON.parse(text) as { version: string }).version : 'missing';
}

function safeRead(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return '';
  }
}
