/**
 * The edge build's transformer: it cannot resize (sharp is a native module and never runs on Workers), so every
 * transform is a clear 501. Untransformed relays never reach a transformer; with IMGRELAY_ORIGIN_URL set the
 * Workers entry forwards transform requests to the Node origin before they get here (src/http/forward.ts).
 */
import { RelayError } from '../errors.js';
import type { Transformer } from './types.js';

export const TRANSFORMS_NEED_ORIGIN = 'Transforms need the Node origin (IMGRELAY_ORIGIN_URL)';

/** `option`: the one the Images binding cannot do, when the edge has one (edge-images.ts `edgeImagesBlocker`). */
export function transformsNeedOrigin(option?: string): RelayError {
  return new RelayError('E_NOT_IMPLEMENTED', option === undefined ? TRANSFORMS_NEED_ORIGIN
    : `The Images binding cannot do the option \`${option}\` as the Node service does; it needs the Node origin (IMGRELAY_ORIGIN_URL)`);
}

export function createPassthroughTransformer(): Transformer {
  return {
    transform: () => Promise.reject(transformsNeedOrigin()),
  };
}
