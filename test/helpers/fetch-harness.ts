/**
 * Test harness for the guarded fetcher: builds it from an IMGRELAY_* environment through parseConfig (so the
 * env parsing path is exercised), closes what it built, captures RelayErrors, and counts every outgoing TCP
 * socket the process creates (node:net's `net.client.socket` channel), the canary for connections to
 * addresses no test listener could observe.
 */
import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import { isIPv4, isIPv6, type Socket } from 'node:net';
import { expect } from 'vitest';
import { parseConfig } from '../../src/config.js';
import { RelayError } from '../../src/errors.js';
import type { HeaderRule } from '../../src/fetch/header-rules.js';
import { createGuardedFetcher } from '../../src/fetch/guarded-fetcher.js';
import type { SourceFetcher } from '../../src/fetch/types.js';
import { type Logger, silentLogger } from '../../src/logger.js';
import { startOrigin, type TestOrigin } from './origin.js';

const open: Array<{ close(): Promise<void> }> = [];

export function buildFetcher(env: Record<string, string>, options: { logger?: Logger; headerRules?: HeaderRule[] } = {})
  : SourceFetcher {
  const config = parseConfig({ IMGRELAY_STORE: 'none', IMGRELAY_LOG_LEVEL: 'silent', ...env });
  const fetcher = createGuardedFetcher(config, { logger: options.logger ?? silentLogger, headerRules: options.headerRules });
  open.push({ close: () => fetcher.close?.() ?? Promise.resolve() });
  return fetcher;
}

export async function startTrackedOrigin(host = '127.0.0.1'): Promise<TestOrigin> {
  const origin = await startOrigin(host);
  open.push(origin);
  return origin;
}

/** Closes every fetcher and origin built since the last call (use in afterEach). */
export async function closeAll(): Promise<void> {
  await Promise.all(open.splice(0).map((item) => item.close()));
}

/** Awaits a rejection and returns it as a RelayError (fails the test for anything else). */
export async function relayErrorOf(promise: Promise<unknown>): Promise<RelayError> {
  const outcome = await promise.then((value) => ({ value }), (error: unknown) => ({ error }));
  if (!('error' in outcome)) throw new Error(`expected a RelayError, got a result: ${JSON.stringify(outcome.value)}`);
  expect(outcome.error).toBeInstanceOf(RelayError);
  return outcome.error as RelayError;
}

/**
 * Counts TCP client sockets created by this process from now until `stop()`, and is a tripwire: a socket
 * headed anywhere but loopback is destroyed before it connects, so even a broken policy under test can
 * never send a packet off this machine (it then fails the test through the count and the error instead).
 */
export function watchOutgoingSockets(isAllowedDestination: (host: string) => boolean = isLoopbackHost)
  : { count(): number; blocked(): number; stop(): void } {
  let count = 0;
  let blocked = 0;
  const onSocket = (message: unknown) => {
    count++;
    const socket = (message as { socket: Socket }).socket;
    const connect = socket.connect;
    socket.connect = function guardedConnect(this: Socket, ...args: unknown[]) {
      const host = destinationHost(args);
      if (isAllowedDestination(host)) return (connect as (...a: unknown[]) => Socket).apply(this, args);
      blocked++;
      process.nextTick(() => socket.destroy(new Error(`test tripwire: refused to connect to ${host}`)));
      return socket;
    } as Socket['connect'];
  };
  subscribe('net.client.socket', onSocket);
  return { count: () => count, blocked: () => blocked, stop: () => unsubscribe('net.client.socket', onSocket) };
}

/** `net.connect` calls `socket.connect([options, cb])` (normalized) — or `(options)` / `(port, host)`. */
function destinationHost(args: unknown[]): string {
  const first = Array.isArray(args[0]) ? args[0][0] : args[0];
  if (first && typeof first === 'object') return String((first as { host?: string }).host ?? 'localhost');
  return typeof args[1] === 'string' ? args[1] : 'localhost';
}

export function isLoopbackHost(host: string): boolean {
  if (host === 'localhost') return true;
  if (isIPv4(host)) return host.startsWith('127.');
  return isIPv6(host) && (host === '::1' || /^::ffff:127\./i.test(host));
}

/** A logger that keeps every entry, to check that the precise reason went to the log. */
export function recordingLogger(): Logger & { entries: Array<{ level: string; obj: object; msg?: string }> } {
  const entries: Array<{ level: string; obj: object; msg?: string }> = [];
  const at = (level: string) => (obj: object, msg?: string) => { entries.push({ level, obj, msg }); };
  return { entries, debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') };
}

/** Bytes that start like a PNG, so what the fetcher returns is recognisably the origin's. */
export function pngLike(size: number): Uint8Array {
  const bytes = new Uint8Array(size);
  bytes.set([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a].slice(0, size));
  for (let i = 8; i < size; i++) bytes[i] = i % 251;
  return bytes;
}
