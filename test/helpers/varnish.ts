/**
 * A real Varnish (Debian's varnishd) on loopback for tests, running deploy/varnish/default.vcl with its backend
 * pointed at a test imgrelay, or deploy/varnish/cluster.vcl with its backends pointed at several (`startVarnishCluster`).
 * Listens on port 0; the port it got is read back with `varnishadm debug.listen_address`. The VCL's siblings
 * (imgrelay.vcl, which both include) are copied next to the rendered file.
 * No varnishd is a failure, not a skip: .ci/run installs it (.ci/apt-packages).
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { chmod, copyFile, mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const run = promisify(execFile);
export const DEFAULT_VCL = fileURLToPath(new URL('../../deploy/varnish/default.vcl', import.meta.url));
export const CLUSTER_VCL = fileURLToPath(new URL('../../deploy/varnish/cluster.vcl', import.meta.url));

export interface TestVarnish {
  /** `http://127.0.0.1:<port>` */
  url: string;
  port: number;
  /** Runs `varnishadm <args…>` against this instance. */
  admin(...args: string[]): Promise<string>;
  /**
   * Points the backend at `port` (loads and activates the VCL again): imgrelay needs Varnish's port in its config
   * and Varnish needs imgrelay's, so one of them learns the other's after both listen on port 0.
   */
  useBackend(port: number): Promise<void>;
  /** `varnishlog -d <args…>`: the log so far (for a failing test's message). */
  log(...args: string[]): Promise<string>;
  /** `varnishstat -1` counters whose names start with one of `prefixes` (e.g. `MAIN.backend_retry`, `VBE.`). */
  counters(...prefixes: string[]): Promise<Record<string, number>>;
  close(): Promise<void>;
}

export interface TestVarnishCluster extends TestVarnish {
  /** Points the cluster's backends at `ports`, in the VCL's order (loads and activates the VCL again). */
  useBackends(ports: number[]): Promise<void>;
  /** Backend names the probes currently call healthy (`varnishadm backend.list`). */
  healthy(): Promise<string[]>;
}

function findBinary(name: string): string {
  for (const dir of [...(process.env.PATH ?? '').split(':'), '/usr/sbin', '/usr/bin', '/usr/local/sbin']) {
    if (dir && existsSync(join(dir, name))) return join(dir, name);
  }
  throw new Error(`${name} is not installed: apt-get install varnish (it is listed in .ci/apt-packages)`);
}

/** Starts varnishd with `vclPath` (its backend at `backendPort`, or at a placeholder until `useBackend`). */
export async function startVarnish(backendPort = 9, vclPath = DEFAULT_VCL): Promise<TestVarnish> {
  const template = await readFile(vclPath, 'utf8');
  if (!/\.port = "8080";/.test(template)) throw new Error(`${vclPath}: expected a backend with .port = "8080"`);
  return runVarnish(vclPath, ([port]) => template.replace(/\.port = "8080";/, `.port = "${port}";`), [backendPort]);
}

export interface ClusterOptions {
  /** The probe's `.interval` (the VCL's production value is a second; tests need it short). */
  probeIntervalMs: number;
  /**
   * The probe's `.timeout`; by default the interval. A longer one keeps a busy instance (a loaded machine answering
   * /readyz late) in the rotation; a draining (503) or stopped (refused) one still fails its probes at once.
   */
  probeTimeoutMs?: number;
}

/**
 * Starts varnishd with deploy/varnish/cluster.vcl, its backends at 127.0.0.1:<port> for `ports` (as many as the VCL
 * lists, in its order; placeholders until `useBackends`), the probe interval shortened.
 */
export async function startVarnishCluster(ports: number[], options: ClusterOptions, vclPath = CLUSTER_VCL)
  : Promise<TestVarnishCluster> {
  const template = await readFile(vclPath, 'utf8');
  const count = (template.match(/^backend \w+ \{[^}]*\}/gm) ?? []).length;
  if (count !== ports.length) throw new Error(`${vclPath}: ${count} backends, the test runs ${ports.length}`);
  const render = (to: number[]) => {
    let index = 0;
    return template
      .replace(/^backend \w+ \{[^}]*\}/gm, (block) => block.replace(/\.host = "[^"]*";/, '.host = "127.0.0.1";')
        .replace(/\.port = "\d+";/, `.port = "${to[index++]}";`))
      .replace(/(probe \w+ \{[^}]*?)\.timeout = [^;]+;/, `$1.timeout = ${options.probeTimeoutMs ?? options.probeIntervalMs}ms;`)
      .replace(/(probe \w+ \{[^}]*?)\.interval = [^;]+;/, `$1.interval = ${options.probeIntervalMs}ms;`);
  };
  const varnish = await runVarnish(vclPath, render, ports);
  return {
    ...varnish,
    useBackends: (to) => varnish.load(to),
    // Rows are `<vcl>.<backend>  <admin>  <probe>  <health> …`; only the active VCL's count.
    healthy: async () => (await varnish.admin('backend.list')).split('\n').map((line) => line.split(/\s+/))
      .filter((cols) => cols[0].startsWith(`${varnish.active()}.`) && cols[3] === 'healthy')
      .map((cols) => cols[0].slice(varnish.active().length + 1)),
  };
}

/** varnishd running `render(ports)` (written beside copies of the VCL's siblings, for its includes). */
async function runVarnish(vclPath: string, render: (ports: number[]) => string, ports: number[])
  : Promise<TestVarnish & { load(ports: number[]): Promise<void>; active(): string }> {
  const varnishd = findBinary('varnishd');
  const varnishadm = findBinary('varnishadm');
  const varnishstat = findBinary('varnishstat');
  const dir = await mkdtemp(join(tmpdir(), 'imgrelay-varnish-'));
  await chmod(dir, 0o755); // varnishd compiles the VCL as its own unprivileged user
  const siblings = (await readdir(dirname(vclPath))).filter((name) => name.endsWith('.vcl'));
  for (const name of siblings) await copyFile(join(dirname(vclPath), name), join(dir, name));
  const vclFor = async (to: number[]) => {
    const path = join(dir, `backend-${to.join('-')}.vcl`);
    await writeFile(path, render(to), { mode: 0o644 });
    return path;
  };
  const vcl = await vclFor(ports);
  const workdir = join(dir, 'n');
  const child = spawn(varnishd, ['-F', '-a', '127.0.0.1:0', '-T', '127.0.0.1:0', '-f', vcl, '-n', workdir,
    '-s', 'malloc,32m', '-p', 'ban_lurker_sleep=0.05'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout?.on('data', (chunk) => { output += chunk; });
  child.stderr?.on('data', (chunk) => { output += chunk; });
  const admin = async (...args: string[]) => (await run(varnishadm, ['-n', workdir, ...args], { timeout: 10_000 })).stdout;
  let loads = 0;
  let active = 'boot';
  const load = async (to: number[]) => {
    const name = `vcl${++loads}`;
    await admin('vcl.load', name, await vclFor(to));
    await admin('vcl.use', name);
    await admin('vcl.discard', active).catch(() => {}); // its backends' probes stop with it (busy: later)
    active = name;
  };
  const log = async (...args: string[]) =>
    (await run(findBinary('varnishlog'), ['-n', workdir, '-d', ...args], { timeout: 10_000, maxBuffer: 64 << 20 })).stdout;
  const counters = async (...prefixes: string[]) => {
    const { stdout } = await run(varnishstat, ['-n', workdir, '-1'], { timeout: 10_000 });
    const out: Record<string, number> = {};
    for (const line of stdout.split('\n')) {
      const [name, value] = line.split(/\s+/);
      if (name && prefixes.some((p) => name.startsWith(p))) out[name] = Number(value);
    }
    return out;
  };
  try {
    const port = await listenPort(child, admin, () => output);
    return {
      url: `http://127.0.0.1:${port}`, port, admin, counters, log, load, active: () => active,
      useBackend: (backend) => load([backend]),
      close: async () => {
        await stop(child);
        await rm(dir, { recursive: true, force: true });
      },
    };
  } catch (error) {
    await stop(child);
    await rm(dir, { recursive: true, force: true });
    throw error;
  }
}

/** Waits (bounded) until the child serves, then reads its listen port. */
async function listenPort(child: ChildProcess, admin: (...args: string[]) => Promise<string>, output: () => string)
  : Promise<number> {
  const deadline = Date.now() + 30_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`varnishd exited (${child.exitCode}):\n${output()}`);
    try {
      const match = /^\S+ 127\.0\.0\.1 (\d+)$/m.exec(await admin('debug.listen_address'));
      if (match) return Number(match[1]);
    } catch {
      // not up yet
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`varnishd did not start within 30 s:\n${output()}`);
}

async function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
  await exited;
  clearTimeout(timer);
}
