/**
 * The signed-URL variables (issue #16, DESIGN.md "Signatures"): their table, spread into src/config.ts, and the
 * typed sub-object the signature policy (signature.ts) receives. Portable (no `node:` imports).
 */
import { z } from 'zod';
import { HOST_GLOB, list, type VarSpec } from '../config-schema.js';

export type SignatureMode = 'off' | 'transforms' | 'all';

/** 32 bytes = 256 bits, HMAC-SHA256's own strength; a shorter secret is the weak link. */
export const MIN_KEY_BYTES = 32;

const keyBytes = (key: string) => new TextEncoder().encode(key).byteLength;

/**
 * A glob with internationalised labels in the xn-- form a parsed source URL's hostname has (`bücher.example` →
 * `xn--bcher-kva.example`), so it can match at all. A label mixing `*` and non-ASCII has no such form: left as
 * written, the pattern check below refuses it.
 */
function asciiGlob(glob: string): string {
  return glob.split('.').map((label) => {
    // Only a label of letters, digits, marks and hyphens is converted: anything else (`*`, `/`, `:`) stays to be refused.
    if (/^[\x00-\x7f]*$/.test(label) || !/^[\p{L}\p{N}\p{M}-]+$/u.test(label)) return label;
    try {
      return new URL(`http://${label}`).hostname;
    } catch {
      return label;
    }
  }).join('.');
}

export const SIGNATURE_VARS = {
  SIGNING_KEYS: [list.pipe(z.array(z.string().refine((key) => keyBytes(key) >= MIN_KEY_BYTES,
    `comma-separated keys of at least ${MIN_KEY_BYTES} bytes each (e.g. \`openssl rand -base64 48\`)`))), ''],
  REQUIRE_SIGNATURE: [z.string().trim().toLowerCase().pipe(z.enum(['off', 'transforms', 'all'],
    'off, transforms or all')), 'off'],
  UNSIGNED_HOSTS: [list.pipe(z.array(z.string().transform(asciiGlob)
    .pipe(z.string().regex(HOST_GLOB, 'host names or globs (no scheme, no port; `*` not inside a non-ASCII label)')))), ''],
} as const satisfies Record<string, VarSpec>;

type SignatureParsed = { [K in keyof typeof SIGNATURE_VARS]: z.output<(typeof SIGNATURE_VARS)[K][0]> };

export interface SignatureConfig {
  /** HMAC keys (UTF-8 text): every one verifies, the first signs (rotation: prepend the new one, drop the old later). */
  keys: readonly string[];
  /** `off`: only a present signature is checked; `transforms`: options need one; `all`: every request needs one. */
  mode: SignatureMode;
  /** Source host globs whose legacy `/?<url>` relays pass unsigned in `all` mode (the legacy form cannot carry one). */
  unsignedHosts: readonly string[];
}

export function toSignatureConfig(v: SignatureParsed): SignatureConfig {
  return { keys: v.SIGNING_KEYS, mode: v.REQUIRE_SIGNATURE, unsignedHosts: v.UNSIGNED_HOSTS };
}

/** A mode that requires signatures with no key to verify them would refuse every request it covers. */
export function signatureProblems(v: SignatureParsed): string[] {
  if (v.REQUIRE_SIGNATURE === 'off' || v.SIGNING_KEYS.length > 0) return [];
  return [`IMGRELAY_REQUIRE_SIGNATURE=${v.REQUIRE_SIGNATURE}: requires IMGRELAY_SIGNING_KEYS`];
}
