/**
 * Signed URLs (issue #16 item 1; DESIGN.md "Signatures"). The signature is HMAC-SHA256, base64url without padding,
 * over the SIGNED STRING of a request as parsed:
 *
 *   <canonical source href> "\n" <option string>
 *
 * where the option string lists every option the request carries (transform and response options, presets
 * expanded) under imgrelay's field names, sorted, as `name=encodeURIComponent(value)` joined by `&` ('' when none).
 * It is built from the PARSED options, not the normalised cache-key spec: so `w=800&url=…` and `url=…&w=800`, the
 * query form and the path form, `width=` and `w=` all sign alike, while signed URLs already in pages stay valid
 * when a later version normalises variants differently. The signature itself (`s=`, `sig=`) is never signed and
 * never part of a cache key. WebCrypto only: the Worker build runs this too.
 */
import { RelayError } from '../errors.js';
import { compileHostGlobs } from '../fetch/host-glob.js';
import type { RequestOptions } from '../url/options.js';
import type { ImageRequest } from '../url/request.js';
import type { SignatureConfig } from './signature-config.js';

const encoder = new TextEncoder();

/**
 * The option string: `name=value` pairs of the parsed options, sorted by name (module comment). The path form's
 * Cloudflare defaults are not signed (`signedSpec`): a page template signs what it writes in the URL.
 */
export function signedOptionString(options: RequestOptions): string {
  const fields: Record<string, unknown> = { ...(options.signedSpec ?? options.spec), ...options.response };
  return Object.keys(fields).filter((name) => fields[name] !== undefined).sort()
    .map((name) => `${name}=${encodeURIComponent(String(fields[name]))}`).join('&');
}

/** What is signed: the canonical source href, a newline (never inside an href), the option string. */
export function signedString(request: Pick<ImageRequest, 'source' | 'options'>): string {
  return `${request.source.href}\n${signedOptionString(request.options)}`;
}

const importKey = (key: string) => crypto.subtle.importKey('raw', encoder.encode(key),
  { name: 'HMAC', hash: 'SHA-256' }, false, ['sign']);

function base64url(bytes: ArrayBuffer): string {
  let binary = '';
  for (const byte of new Uint8Array(bytes)) binary += String.fromCharCode(byte);
  return btoa(binary).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

async function hmac(key: CryptoKey, text: string): Promise<string> {
  return base64url(await crypto.subtle.sign('HMAC', key, encoder.encode(text)));
}

/** Equal strings in time that depends only on their lengths (a signature's length is no secret). */
export function constantTimeEqual(a: string, b: string): boolean {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a.charCodeAt(i) ^ b.charCodeAt(i);
  return diff === 0;
}

export interface Signer {
  /** The signature of `request` with the first key (the one that signs). */
  sign(request: Pick<ImageRequest, 'source' | 'options'>): Promise<string>;
  /** True when `signature` is the request's signature under any configured key. */
  verify(request: Pick<ImageRequest, 'source' | 'options'>, signature: string): Promise<boolean>;
}

export function createSigner(keys: readonly string[]): Signer {
  let imported: Promise<CryptoKey[]> | undefined;
  const cryptoKeys = () => (imported ??= Promise.all(keys.map(importKey)));
  return {
    async sign(request) {
      const [first] = await cryptoKeys();
      if (!first) throw new Error('No signing key configured');
      return hmac(first, signedString(request));
    },
    async verify(request, signature) {
      const text = signedString(request);
      // Padding is optional in base64url; whatever a client appended, it is compared without it.
      const given = signature.replace(/=+$/, '');
      let valid = false;
      // Every key is tried, even after a match: the time taken does not tell which key signed.
      for (const key of await cryptoKeys()) if (constantTimeEqual(await hmac(key, text), given)) valid = true;
      return valid;
    },
  };
}

export interface SignaturePolicy {
  /** Resolves when `request` may proceed; throws 403 E_SIGNATURE when its signature is missing or wrong. */
  check(request: ImageRequest): Promise<void>;
}

const ALLOWED: Promise<void> = Promise.resolve();

/**
 * The policy. A signature that is present is verified whenever keys are configured, in every mode (`off`
 * included): a wrong one is refused, never silently ignored. Whether a MISSING one is refused depends on the mode.
 */
export function signaturePolicy(config: SignatureConfig): SignaturePolicy {
  const signer = createSigner(config.keys);
  const unsignedHost = compileHostGlobs(config.unsignedHosts);
  const needed = (request: ImageRequest): string | undefined => {
    if (request.form === 'legacy') {
      if (config.mode !== 'all' || unsignedHost(request.source.hostname)) return undefined;
      return 'The legacy /?<url> form cannot carry a signature, and this source host is not in IMGRELAY_UNSIGNED_HOSTS: use a signed /?url=…&s=… or /cdn-cgi/image/…,sig=…/ URL';
    }
    if (config.mode === 'all' || (config.mode === 'transforms' && Object.keys(request.options.spec).length > 0)) {
      return 'This URL needs a signature (s= in the query form, sig= in the path form): see the README, "Signed URLs"';
    }
    return undefined;
  };
  return {
    check(request) {
      // The legacy form's whole query is the source URL: an `s=` in it belongs to the source, it is no signature.
      const signature = request.form === 'legacy' ? undefined : request.options.signature;
      if (signature !== undefined && config.keys.length > 0) return verified(signer, request, signature);
      const missing = needed(request);
      return missing ? Promise.reject(signatureError(missing)) : ALLOWED;
    },
  };
}

async function verified(signer: Signer, request: ImageRequest, signature: string): Promise<void> {
  if (!(await signer.verify(request, signature))) throw signatureError('The URL\'s signature is wrong for this request');
}

const signatureError = (detail: string) => new RelayError('E_SIGNATURE', detail);
