/** Runs wrk (the Debian package) against one URL and parses its report. */
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

export interface WrkOptions {
  threads: number;
  connections: number;
  durationS: number;
  headers?: Record<string, string>;
  /** Rotate over these paths (round robin across all connections) instead of requesting the URL's own path. */
  paths?: readonly string[];
}

export interface WrkResult {
  requests: number;
  rps: number;
  latencyP50Ms: number;
  latencyP99Ms: number;
  non2xx: number;
  socketErrors: number;
  raw: string;
}

export async function wrk(url: string, options: WrkOptions): Promise<WrkResult> {
  const args = ['--latency', `-t${options.threads}`, `-c${options.connections}`, `-d${options.durationS}s`];
  for (const [name, value] of Object.entries(options.headers ?? {})) args.push('-H', `${name}: ${value}`);
  const script = options.paths?.length ? rotationScript(options.paths) : undefined;
  try {
    const { stdout } = await run('wrk', [...args, ...(script ? ['-s', script.file] : []), url], { maxBuffer: 1 << 20 });
    return parseWrk(stdout);
  } finally {
    script?.remove();
  }
}

/** A wrk Lua script that hands each new request the next path of the list. */
function rotationScript(paths: readonly string[]): { file: string; remove(): void } {
  const dir = mkdtempSync(join(tmpdir(), 'imgrelay-bench-wrk-'));
  const file = join(dir, 'rotate.lua');
  const list = paths.map((path) => JSON.stringify(path)).join(',\n  ');
  writeFileSync(file, `local paths = {\n  ${list}\n}\nlocal n = 0\n` +
    'request = function()\n  n = n + 1\n  return wrk.format(nil, paths[(n % #paths) + 1])\nend\n');
  return { file, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

export function parseWrk(text: string): WrkResult {
  const number = (pattern: RegExp) => Number(pattern.exec(text)?.[1] ?? Number.NaN);
  const socket = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(text);
  return {
    requests: number(/(\d+) requests in/),
    rps: number(/Requests\/sec:\s+([\d.]+)/),
    latencyP50Ms: duration(/^\s+50%\s+([\d.]+\w+)/m.exec(text)?.[1]),
    latencyP99Ms: duration(/^\s+99%\s+([\d.]+\w+)/m.exec(text)?.[1]),
    non2xx: number(/Non-2xx or 3xx responses: (\d+)/) || 0,
    socketErrors: socket ? socket.slice(1).reduce((total, n) => total + Number(n), 0) : 0,
    raw: text,
  };
}

const UNIT_MS: Record<string, number> = { us: 0.001, ms: 1, s: 1000, m: 60_000 };

/** "1.23ms" → 1.23, "850.00us" → 0.85; NaN when absent. */
export function duration(text: string | undefined): number {
  const match = /^([\d.]+)(us|ms|s|m)$/.exec(text ?? '');
  return match ? Number(match[1]) * UNIT_MS[match[2]] : Number.NaN;
}

export async function wrkAvailable(): Promise<boolean> {
  try {
    await run('wrk', ['--version']);
    return true;
  } catch (error) {
    // `wrk --version` prints its banner and exits 1; only a missing binary is fatal.
    return (error as NodeJS.ErrnoException).code !== 'ENOENT';
  }
}
