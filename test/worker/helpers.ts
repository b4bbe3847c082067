/** Helpers for the workerd suite: calling the Worker as the runtime does, and asking the lab what it saw. */
import { createExecutionContext, env, waitOnExecutionContext } from 'cloudflare:test';
import worker from '../../src/worker.js';
import { createEdge, type Edge, type EdgeOptions } from '../../src/edge.js';
import { IMAGE_HOST, NODE_ORIGIN_HOST } from './lab-hosts.js';

export const EDGE = 'https://img.example.com';
export const IMAGES = `http://${IMAGE_HOST}`;
export const NODE_ORIGIN = `http://${NODE_ORIGIN_HOST}`;

/** A unique token per call, so tests sharing the Cache API (one per workerd process) never see each other's keys. */
export function unique(name: string): string {
  return `${name}-${crypto.randomUUID().slice(0, 8)}`;
}

/**
 * One request through the Worker's default export with `vars` on top of wrangler.toml's, waiting for its
 * ctx.waitUntil work (the Cache API and R2 writes) like the runtime lets it finish.
 */
export async function viaWorker(path: string, vars: Record<string, unknown> = {}, init?: RequestInit): Promise<Response> {
  const ctx = createExecutionContext();
  const response = await worker.fetch(new Request(EDGE + path, init), { ...env, ...vars }, ctx);
  await waitOnExecutionContext(ctx);
  return response;
}

/** A fresh edge, as a new isolate would build it (its own memory tier; the data centre's Cache API). */
export function freshEdge(vars: Record<string, unknown> = {}, options: EdgeOptions = {}): Edge {
  return createEdge({ ...env, ...vars }, options);
}

/** One request through an edge, waiting for its background writes. */
export async function viaEdge(edge: Edge, path: string, init?: RequestInit): Promise<Response> {
  const response = await edge.handle(new Request(EDGE + path, init));
  await edge.settled();
  return response;
}

/** How many requests the image origin received for exactly `pathAndQuery`. */
export async function originHits(pathAndQuery: string): Promise<number> {
  const response = await fetch(`${IMAGES}/__hits?path=${encodeURIComponent(pathAndQuery)}`);
  return ((await response.json()) as { hits: number }).hits;
}

export async function sha256(body: ArrayBuffer | Uint8Array): Promise<string> {
  const digest = await crypto.subtle.digest('SHA-256', body as Uint8Array<ArrayBuffer>);
  return [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, '0')).join('');
}

/** The original bytes as the image origin serves them (one more origin hit, on purpose). */
export async function originalBytes(path: string): Promise<ArrayBuffer> {
  return (await fetch(IMAGES + path)).arrayBuffer();
}

export interface Problem {
  type: string;
  title: string;
  status: number;
  detail: string;
  code: string;
}

export const problemOf = async (response: Response): Promise<Problem> => (await response.json()) as Problem;
