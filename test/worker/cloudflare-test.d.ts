/**
 * The parts of `cloudflare:test` this suite uses, typed without @cloudflare/workers-types (not a dependency):
 * the pool's own declarations need the Workers global types, which the project's tsconfig (DOM + Node) lacks.
 */
declare module 'cloudflare:test' {
  import type { R2BucketLike } from '../../src/cache/r2-store.js';

  interface ExecutionContext {
    waitUntil(promise: Promise<unknown>): void;
    passThroughOnException(): void;
  }

  export const env: { IMGRELAY_R2: R2BucketLike } & Record<string, unknown>;
  export const SELF: { fetch(input: string | Request, init?: RequestInit): Promise<Response> };
  export function createExecutionContext(): ExecutionContext;
  export function waitOnExecutionContext(ctx: ExecutionContext): Promise<void>;
}
