/**
 * What the edge answers itself before any work (edge.ts): a proxy loop, and a transform it cannot run. Portable.
 */
import type { Config } from './config.js';
import { loopError, VIA_HEADER_VALUE } from './fetch/loop-guard.js';
import { redirectOnError } from './http/image-route.js';
import { problemResponse } from './http/problem.js';
import { transformsNeedOrigin } from './transform/passthrough.js';
import type { ImageRequest } from './url/request.js';

/** 508 with our Via token, so that an imgrelay that asked recognises the loop too. */
export function refuseLoop(config: Config): Response {
  const response = problemResponse(loopError('The request came through an imgrelay: a proxy loop'),
    { negativeTtlS: config.negativeTtlS });
  response.headers.set('via', VIA_HEADER_VALUE);
  return response;
}

/**
 * No origin: a transform is a clear 501 (after the same source checks, so a forbidden source is still a 403 — or,
 * with `onerror=redirect`, the same 302 to the source as the Node service answers).
 */
export function refuseTransform(config: Config, policy: { check(url: URL): void }, image: ImageRequest,
  option?: string): Response {
  try {
    policy.check(image.source);
    throw transformsNeedOrigin(option);
  } catch (error) {
    return redirectOnError(image, error) ?? problemResponse(error, { negativeTtlS: config.negativeTtlS });
  }
}
