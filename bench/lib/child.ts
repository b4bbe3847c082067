/**
 * Runs each contender (imgrelay, bare node:http, ipx, raw sharp, S3 emulator…) in its own child process, so its
 * CPU time and RSS are its own. Children speak a tiny IPC protocol (bench/servers/ipc.ts): they announce
 * `ready` with their port, answer named commands, and exit cleanly on `stop` (which also flushes --cpu-prof).
 */
import { type ChildProcess, spawn } from 'node:child_process';
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

export const serverEntry = (file: string) => fileURLToPath(new URL(`../servers/${file}`, import.meta.url));

export async function spawnChild(name: string, entry: string, options: SpawnOptions = {}): Promise<Child> {
  const proc = spawn(process.execPath, [...(options.nodeArgs ?? []), '--import', 'tsx', entry], {
    env: { ...process.env, MALLOC_ARENA_MAX: '2', ...options.env },
    stdio: ['ignore', 'ignore', 'pipe', 'ipc'],
  });
  const stderr = captureTail(proc);
  const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
  const info = await waitReady(name, proc, stderr, options.readyTimeoutMs ?? 30_000);
  return makeHandle(name, proc, info, exited);
}

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
