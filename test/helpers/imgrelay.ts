/** Boots the real Node service (real sockets, real wiring) from an IMGRELAY_* environment, for tests. */
import { createHash } from 'node:crypto';
import { parseConfig } from '../../src/config.js';
import { silentLogger } from '../../src/logger.js';
import { type RunningNode, startNode } from '../../src/node.js';

export const ZAKER = 'zkres2.myzaker.com';

/** Test defaults: loopback, ephemeral ports (public and admin), no persistent store, quiet. `env` overrides them. */
export async function bootImgrelay(env: Record<string, string> = {}): Promise<RunningNode> {
  return startNode(parseConfig({
    IMGRELAY_PORT: '0', IMGRELAY_ADMIN_PORT: '0', IMGRELAY_HOST: '127.0.0.1', IMGRELAY_STORE: 'none',
    IMGRELAY_LOG_LEVEL: 'silent', ...env,
  }), { logger: silentLogger });
}

/**
 * The environment that points the article host at a loopback origin, as an operator's lab would:
 * `zkres2.myzaker.com:80` connects to 127.0.0.1:<originPort>, and loopback is exempt from the address block.
 */
export function zakerAt(originPort: number, host = ZAKER): Record<string, string> {
  return {
    IMGRELAY_RESOLVE: `${host}:80:127.0.0.1:${originPort}`,
    IMGRELAY_ALLOW_PRIVATE_NETWORKS: '127.0.0.0/8',
  };
}

export async function bytes(response: Response): Promise<Uint8Array> {
  return new Uint8Array(await response.arrayBuffer());
}

/** A digest to compare bodies by: vitest's deep equality walks typed arrays element by element (seconds per MB). */
export function digest(body: Uint8Array): string {
  return createHash('sha256').update(body).digest('hex');
}
