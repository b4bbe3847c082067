/**
 * The Workers entry (wrangler.toml `main`): one edge service per isolate (src/edge.ts), built on the first request
 * from the Worker's `env`, and each request's background work (Cache API and R2 writes, revalidations) handed to
 * its ctx.waitUntil. Only the default export lives here: the runtime takes every export of the main module for an
 * entrypoint.
 */
import { ConfigError } from './config.js';
import { createEdge, type Edge, imgrelayVars, type WorkerEnv } from './edge.js';
import { RelayError } from './errors.js';
import { problemResponse } from './http/problem.js';

export type { WorkerEnv } from './edge.js';

/** The part of the Workers ExecutionContext used here. */
export interface WorkerContext {
  waitUntil(work: Promise<unknown>): void;
}

/** One edge per isolate, rebuilt only if the IMGRELAY_* vars differ (a new deployment gets new isolates anyway). */
let current: { fingerprint: string; edge: Edge | ConfigError } | undefined;

function edgeFor(env: WorkerEnv): Edge | ConfigError {
  const fingerprint = JSON.stringify([imgrelayVars(env), Boolean(env.IMGRELAY_R2), Boolean(env.IMAGES)]);
  if (current?.fingerprint !== fingerprint) {
    let edge: Edge | ConfigError;
    try {
      edge = createEdge(env);
    } catch (error) {
      if (!(error instanceof ConfigError)) throw error;
      console.error(error.message);
      edge = error;
    }
    current = { fingerprint, edge };
  }
  return current.edge;
}

export default {
  async fetch(request: Request, env: WorkerEnv, ctx: WorkerContext): Promise<Response> {
    const edge = edgeFor(env);
    if (edge instanceof ConfigError) {
      // The variables are in the Worker's logs; the public gets no configuration details.
      return problemResponse(new RelayError('E_INTERNAL', 'imgrelay is misconfigured; see the Worker logs'),
        { negativeTtlS: 0 });
    }
    const response = await edge.handle(request);
    ctx.waitUntil(edge.settled());
    return response;
  },
};
