/**
 * Why a cancelled wait ends: the signal's own reason, or a standard AbortError when the aborter gave none. Shared by
 * the transform pool and the single-flight (both reject a waiter whose request went away). Portable.
 */
export function abortReason(signal: AbortSignal): unknown {
  return signal.reason ?? new DOMException('The operation was aborted', 'AbortError');
}
