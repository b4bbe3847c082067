/**
 * The podman side of the container test: build the image from the repository's Containerfile, run, probe and stop
 * containers. Everything goes through the real podman CLI (rootful here, runc, slirp4netns: FIELD-NOTES "Containers").
 */
import { spawn } from 'node:child_process';
import { homedir } from 'node:os';
import { fileURLToPath } from 'node:url';

export const REPO = fileURLToPath(new URL('../../', import.meta.url));
/** The local stand-in for node:22-slim that `.ci/container-base.sh` makes (no registry is reachable here). */
export const BASE_IMAGE = process.env.IMGRELAY_BASE_IMAGE ?? 'localhost/imgrelay-base:bookworm';
export const IMAGE = 'localhost/imgrelay:container-test';
/**
 * slirp4netns with allow_host_loopback: the container reaches the host's 127.0.0.1 at 10.0.2.2, so the test origin
 * stays on loopback, and `-p 127.0.0.1:…` still publishes the service on the host's loopback only.
 */
export const NETWORK = 'slirp4netns:allow_host_loopback=true';
export const HOST_LOOPBACK_FROM_CONTAINER = '10.0.2.2';

export interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

export function podman(args: string[], timeoutMs = 120_000): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn('podman', args, { cwd: REPO, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => { stdout += chunk.toString(); });
    child.stderr.on('data', (chunk: Buffer) => { stderr += chunk.toString(); });
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code: code ?? -1, stdout, stderr });
    });
  });
}

export async function podmanOk(args: string[], timeoutMs?: number): Promise<string> {
  const run = await podman(args, timeoutMs);
  if (run.code !== 0) throw new Error(`podman ${args.join(' ')} exited ${run.code}:\n${run.stderr.slice(-4000)}`);
  return run.stdout.trim();
}

/**
 * Builds the image FROM the local base. The build has no route to the npm registry (its TLS goes through a proxy the
 * container does not trust), so `npm ci` runs offline against the host's npm cache, mounted as an overlay: the build
 * reads it and never writes to it. `.ci/run`'s `npm ci` fills that cache on a fresh machine.
 */
export async function buildImage(): Promise<void> {
  const run = await podman(buildArgs(), 20 * 60_000);
  if (run.code === 0) return;
  if (/ENOTCACHED/.test(run.stdout + run.stderr)) {
    throw new Error('the host npm cache lacks packages of package-lock.json: run `bash .ci/container-npm-cache.sh` once');
  }
  throw new Error(`podman build exited ${run.code}:\n${(run.stdout + run.stderr).slice(-4000)}`);
}

function buildArgs(): string[] {
  return ['build', '--format', 'docker', '--build-arg', `BASE=${BASE_IMAGE}`, '--build-arg', 'NPM_CONFIG_OFFLINE=true',
    '--volume', `${homedir()}/.npm:/root/.npm:O`, '--tag', IMAGE, '.'];
}

export interface ContainerSpec {
  name: string;
  volume: string;
  env: Record<string, string>;
}

/** Starts a detached container with the service published on an ephemeral host port; returns that port. */
export async function runContainer(spec: ContainerSpec): Promise<number> {
  const env = Object.entries(spec.env).flatMap(([key, value]) => ['--env', `${key}=${value}`]);
  await podmanOk(['run', '--detach', '--init', '--name', spec.name, '--network', NETWORK,
    '--publish', '127.0.0.1::8080', '--volume', `${spec.volume}:/var/cache/imgrelay`, ...env, IMAGE]);
  const mapping = await podmanOk(['port', spec.name, '8080/tcp']);
  const port = Number(mapping.slice(mapping.lastIndexOf(':') + 1));
  if (!Number.isInteger(port) || port <= 0) throw new Error(`no published port in "${mapping}"`);
  return port;
}

export async function inspect(name: string, format: string): Promise<string> {
  return podmanOk(['inspect', name, '--format', format]);
}

/** `podman stop -t` sends STOPSIGNAL (SIGTERM), then SIGKILL after the grace period; how long it took and how it ended. */
export async function stopContainer(name: string, graceSeconds: number): Promise<{ ms: number; exitCode: number }> {
  const started = performance.now();
  await podmanOk(['stop', '--time', String(graceSeconds), name], (graceSeconds + 30) * 1000);
  const ms = performance.now() - started;
  return { ms, exitCode: Number(await inspect(name, '{{.State.ExitCode}}')) };
}

export async function waitForHealthz(port: number, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = '';
  while (Date.now() < deadline) {
    try {
      const response = await fetch(`http://127.0.0.1:${port}/healthz`);
      if (response.ok) return;
      last = `status ${response.status}`;
    } catch (error) {
      last = String(error);
    }
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  throw new Error(`/healthz did not answer 200 within ${timeoutMs} ms (${last})`);
}
