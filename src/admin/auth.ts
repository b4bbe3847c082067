/**
 * Admin bearer tokens (IMGRELAY_ADMIN_TOKENS, several at once so they can be rotated). Both sides are hashed with
 * SHA-256 and compared with `timingSafeEqual`, against every configured token (no early exit), so neither the
 * token's length nor which token matched shows in the timing. A token is named in logs by its id: the first
 * 8 hex digits of its SHA-256, enough to tell tokens apart, useless to an attacker.
 */
import { createHash, timingSafeEqual } from 'node:crypto';

export type AuthResult = { ok: true; tokenId: string } | { ok: false; tokenId?: string; reason: string };

const sha256 = (text: string) => createHash('sha256').update(text, 'utf8').digest();

export const tokenId = (token: string) => sha256(token).toString('hex').slice(0, 8);

export class TokenChecker {
  private readonly digests: Buffer[];

  constructor(tokens: readonly string[]) {
    this.digests = tokens.map(sha256);
  }

  get enabled(): boolean {
    return this.digests.length > 0;
  }

  /** Checks an `Authorization` header value. */
  check(authorization: string | undefined | null): AuthResult {
    const match = /^Bearer[ \t]+(\S+)\s*$/i.exec(authorization ?? '');
    if (!match) return { ok: false, reason: 'Missing bearer token: send Authorization: Bearer <token>' };
    const presented = sha256(match[1]);
    let matched = false;
    for (const digest of this.digests) matched = timingSafeEqual(presented, digest) || matched;
    const id = presented.toString('hex').slice(0, 8);
    return matched ? { ok: true, tokenId: id } : { ok: false, tokenId: id, reason: 'Invalid token' };
  }
}
