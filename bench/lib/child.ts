/**
 * Runs each contender (imgrelay, bare node:http, ipx, raw sharp, S3 emulator…) in its own child process, so its
 * CPU time and RSS are its own. Children speak a tiny IPC protocol (bench/servers/ipc.ts): they announce
 * `ready` with their port, answer named commands, and exit cleanly on `stop` (which also flushes --cpu-prof).
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { cpuTimeMs, memory, type MemorySample } from './proc.js';

export interface SpawnOptions {
  env?: Record<string, string>;
  /** Extra node flags, e.g. ['--cpu-prof', '--cpu-prof-dir=…']. */
  nodeArgs?: string[];
  readyTimeoutMs?: number;
}

export interface Child {
  name: string;
  pid: number;
  /** Whatever the child announced with `ready` (port, versions…). */
  info: Record<string, unknown>;
  /** `http://127.0.0.1:<port>` when the child announced a port. */
  url: string;
  call<T = unknown>(command: string, payload?: unknown): Promise<T>;
  cpuMs(): number;
  memory(): MemorySample;
  /** Graceful stop (bounded), then SIGKILL. Resolves once the process is gone. */
  stop(): Promise<void>;
}

type Reply = { id: number; ok: boolean; result?: unknown; error?: string };

const ROOT = new URL('../../', import.meta.url);

/**
 * Compiles bench/servers (and the src/ they import) with tsc into dist/bench, as `npm run build` compiles the
 * service: children then run plain `node`, imgrelay as it runs in production, every contender alike. Incremental,
 * so a run with nothing changed spends ~2 s here.
 */
export function buildServers(): void {
  const tsc = fileURLToPath(new URL('node_modules/typescript/bin/tsc', ROOT));
  execFileSync(process.execPath, [tsc, '-p', fileURLToPath(new URL('tsconfig.bench.json', ROOT))], { stdio: 'inherit' });
}

/** A bench server's compiled entry; `file` is its source name under bench/servers, e.g. 'imgrelay.ts'. */
export function serverEntry(file: string): string {
  const entry = fileURLToPath(new URL(`dist/bench/bench/servers/${file.replace(/\.ts$/, '.js')}`, ROOT));
  if (!existsSync(entry)) throw new Error(`${entry} is missing: buildServers() (bench/run.ts calls it) compiles it`);
  return entry;
}

export async function spawnChild(name: string, entry: string, options: SpawnOptions = {}): Promise<Child> {
  const proc = spawn(process.execPath, [...(options.nodeArgs ?? []), ...transpilerFor(entry), entry], {
    env: { ...process.env, MALLOC_ARENA_MAX: '2', ...options.env },
    stdio: ['ignore', 'ignore', 'pipe', 'ipc'],
  });
  const stderr = captureTail(proc);
  const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
  const info = await waitReady(name, proc, stderr, options.readyTimeoutMs ?? 30_000);
  return makeHandle(name, proc, info, exited);
}

/** A TypeScript entry (an older checkout's, in an A/B) runs through tsx; compiled ones run as they are. */
const transpilerFor = (entry: string) => (entry.endsWith('.ts') ? ['--import', 'tsx'] : []);

function captureTail(proc: ChildProcess): () => string {
  let tail = '';
  proc.stderr?.on('data', (chunk: Buffer) => { tail = (tail + chunk.toString()).slice(-4000); });
  return () => tail;
}

function waitReady(name: string, proc: ChildProcess, stderr: () => string, timeoutMs: number) {
  return new Promise<Record<string, unknown>>((resolve, reject) => {
    const fail = (why: string) => {
      clearTimeout(timer);
      proc.kill('SIGKILL');
      reject(new Error(`${name} did not start: ${why}\n${stderr()}`));
    };
    const timer = setTimeout(() => fail(`no ready message after ${timeoutMs} ms`), timeoutMs);
    const onExit = (code: number | null, signal: string | null) => fail(`exited (${code ?? signal})`);
    proc.once('exit', onExit);
    proc.on('message', (message: { type?: string; info?: Record<string, unknown>; error?: string }) => {
      if (message.type === 'failed') fail(message.error ?? 'failed');
      if (message.type !== 'ready') return;
      clearTimeout(timer);
      proc.off('exit', onExit);
      resolve(message.info ?? {});
    });
  });
}

function makeHandle(name: string, proc: ChildProcess, info: Record<string, unknown>, exited: Promise<void>): Child {
  const pending = new Map<number, (reply: Reply) => void>();
  let nextId = 1;
  proc.on('message', (message: Reply & { type?: string }) => {
    if (message.type === undefined && typeof message.id === 'number') pending.get(message.id)?.(message);
  });
  const pid = proc.pid as number;
  const call = <T>(command: string, payload?: unknown) => new Promise<T>((resolve, reject) => {
    const id = nextId++;
    pending.set(id, (reply) => {
      pending.delete(id);
      if (reply.ok) resolve(reply.result as T);
      else reject(new Error(`${name}.${command}: ${reply.error}`));
    });
    proc.send({ id, command, payload });
  });
  return {
    name, pid, info, call,
    url: typeof info.port === 'number' ? `http://127.0.0.1:${info.port}` : '',
    cpuMs: () => cpuTimeMs(pid),
    memory: () => memory(pid),
    stop: async () => {
      if (proc.exitCode !== null || proc.signalCode !== null) return;
      const killer = setTimeout(() => proc.kill('SIGKILL'), 15_000);
      call('stop').catch(() => proc.kill('SIGKILL'));
      await exited;
      clearTimeout(killer);
    },
  };
}
