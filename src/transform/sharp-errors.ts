/**
 * Turns whatever sharp/libvips throws into a RelayError: a format it cannot decode is 415, anything else about
 * the bytes (corrupt, truncated, over a limit) is 422; running past the time limit is 504 E_TRANSFORM_TIMEOUT.
 * A raw sharp error never leaves the transformer.
 */
import { RelayError } from '../errors.js';

const UNSUPPORTED = [
  /unsupported image format/i,
  /compression format has not been built in/i,
  /HEVC/i,
  /unsupported (codec|feature)/i,
  /no decoder|not a known (file|buffer) format/i,
];

/** The first line of a libvips message, trimmed: enough to diagnose, nothing from the process. */
function firstLine(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  return message.split('\n')[0].slice(0, 200);
}

export function toImageError(error: unknown): RelayError {
  if (error instanceof RelayError) return error;
  const line = firstLine(error);
  if (UNSUPPORTED.some((pattern) => pattern.test(line))) {
    return new RelayError('E_UNSUPPORTED_MEDIA', `The image format cannot be decoded: ${line}`, { cause: error });
  }
  // Running out of time says nothing about the bytes (the machine may just be busy): a 504 that is never
  // remembered as an invalid image (MemoryTier.remembering keeps only a decoder's verdict).
  if (/timeout/i.test(line)) {
    return new RelayError('E_TRANSFORM_TIMEOUT', 'The transform ran past its time limit', { cause: error });
  }
  if (/exceeds pixel limit/i.test(line)) {
    return new RelayError('E_IMAGE_INVALID', 'The image has too many pixels', { cause: error });
  }
  return new RelayError('E_IMAGE_INVALID', `The image cannot be decoded: ${line}`, { cause: error });
}
