/**
 * V8's full collection for the idle collector (idle-collect.ts), Node only. `--expose-gc` is switched on at run
 * time and the function taken from a fresh context, so `npm start`, the tests and the bench need no extra flag; a
 * process already started with --expose-gc uses its own `gc`.
 */
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

export function v8FullCollection(): () => void {
  const exposed = (globalThis as { gc?: () => void }).gc;
  if (exposed) return exposed;
  setFlagsFromString('--expose-gc');
  return runInNewContext('gc') as () => void;
}
