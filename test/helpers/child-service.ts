/**
 * The service as its own process (the compiled build, started as `npm start` starts it), for tests that measure what the
 * process holds: RSS is read from /proc/<pid>/status, which only means something for a process of its own.
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';

const root = new URL('../../', import.meta.url);
/** Where `npm run build` puts the service; a caller may run its own copy built elsewhere (see buildService). */
const DEFAULT_OUT_DIR = 'dist/node';
const mallocEnv = new URL('bin/malloc-env.sh', root).pathname;

export interface ChildService {
  child: ChildProcess;
  port: number;
  url: string;
  /** VmRSS and VmHWM (peak RSS since start) in MiB, from /proc/<pid>/status. */
  memory(): { rssMiB: number; peakMiB: number };
  /** `http://127.0.0.1:<admin port>`, once the admin listens (after the purge log's first poll). */
  adminUrl: Promise<string>;
  /** How many JSON log lines so far had `msg` equal to `message` (e.g. `purge settle pass done`). */
  logCount(message: string): number;
  stop(): Promise<void>;
}

/**
 * Compiles the current source into `outDir` (relative to the repository): a build of the caller's own, so two runs
 * building at once never rewrite the files the other's child is loading. The default build (`dist/node`) needs no
 * call: the suite's global setup (test/global-build.ts) brings it up to date before any file starts.
 */
export function buildService(outDir: string): Promise<void> {
  const tsc = new URL('node_modules/typescript/bin/tsc', root).pathname;
  const out = new URL(`${outDir}/`, root).pathname;
  return new Promise((resolve, reject) => execFile(process.execPath, [tsc, '-p', new URL('tsconfig.build.json', root).pathname,
    '--outDir', out, '--tsBuildInfoFile', `${out}.tsbuildinfo`],
  (error, stdout) => (error ? reject(new Error(`npm run build failed:
${stdout}`)) : resolve())));
}

/**
 * Starts dist/node/node.js as `npm start` does (sh sources bin/malloc-env.sh, then `MALLOC_ARENA_MAX=2 exec node`)
 * with `env` (loopback, ephemeral ports, no store by default); resolves once it listens. The pid is node's (exec).
 */
export async function startChildService(env: Record<string, string>, outDir = DEFAULT_OUT_DIR): Promise<ChildService> {
  const entry = new URL(`${outDir}/node.js`, root).pathname;
  const script = `. "${mallocEnv}" && MALLOC_ARENA_MAX=2 exec "${process.execPath}" "${entry}"`;
  const child = spawn('sh', ['-c', script], {
    env: { PATH: process.env.PATH, IMGRELAY_HOST: '127.0.0.1', IMGRELAY_PORT: '0',
      IMGRELAY_ADMIN_PORT: '0', IMGRELAY_STORE: 'none', IMGRELAY_LOG_LEVEL: 'info',
      // SIGTERM stops at once unless a test asks for the load balancers' drain delay.
      IMGRELAY_DRAIN_DELAY_MS: '0', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const messages = collectMessages(child);
  const adminUrl = logged(child, 'imgrelay admin listening').then((line) => `http://127.0.0.1:${line.port as number}`);
  adminUrl.catch(() => {}); // a child that exits before its admin listens rejects both; the caller sees listeningPort's
  const port = await listeningPort(child);
  return {
    child, port, url: `http://127.0.0.1:${port}`, adminUrl,
    logCount: (message) => messages.get(message) ?? 0,
    memory: () => procMemory(child.pid!),
    stop: async () => {
      if (child.exitCode !== null) return;
      const exited = once(child, 'exit');
      child.kill('SIGTERM');
      await exited;
    },
  };
}

function procMemory(pid: number): { rssMiB: number; peakMiB: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kib = (name: string) => Number(new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN);
  return { rssMiB: kib('VmRSS') / 1024, peakMiB: kib('VmHWM') / 1024 };
}

/** The port from the "imgrelay listening" log line; later output is drained so the child never blocks on a pipe. */
export function listeningPort(child: ChildProcess): Promise<number> {
  return new Promise((resolve, reject) => {
    let out = '';
    let found = false;
    child.stderr!.resume();
    child.stdout!.on('data', (chunk: Buffer) => {
      if (found) return;
      out += chunk.toString();
      const line = out.split('\n').find((l) => l.includes('imgrelay listening'));
      if (line) {
        found = true;
        resolve(JSON.parse(line).port as number);
      }
    });
    child.once('exit', (code) => reject(new Error(`exited ${code} before listening: ${out}`)));
  });
}

/** The first JSON log line whose message is `message` (watched on stdout next to listeningPort's reader). */
function logged(child: ChildProcess, message: string): Promise<Record<string, unknown>> {
  return new Promise((resolve, reject) => {
    let out = '';
    const onData = (chunk: Buffer) => {
      out += chunk.toString();
      const lines = out.split('\n');
      out = lines.pop() ?? '';
      const line = lines.find((l) => l.includes(`"${message}"`));
      if (!line) return;
      child.stdout!.off('data', onData);
      resolve(JSON.parse(line) as Record<string, unknown>);
    };
    child.stdout!.on('data', onData);
    child.once('exit', (code) => reject(new Error(`exited ${code} before logging ${message}`)));
  });
}

/** Counts of the log lines' `msg` values (not the lines: a long run would hold them all). */
function collectMessages(child: ChildProcess): Map<string, number> {
  const counts = new Map<string, number>();
  let rest = '';
  child.stdout!.on('data', (chunk: Buffer) => {
    const lines = (rest + chunk.toString()).split('\n');
    rest = lines.pop() ?? '';
    for (const line of lines) {
      const msg = /"msg":"([^"]*)"/.exec(line)?.[1];
      if (msg) counts.set(msg, (counts.get(msg) ?? 0) + 1);
    }
  });
  return counts;
}
