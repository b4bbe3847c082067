/** The edge's logger: JSON lines on the console, which Workers Logs and `wrangler tail` pick up. */
import type { Logger } from './logger.js';

const LEVELS: Record<string, number> = { trace: 10, debug: 20, info: 30, warn: 40, error: 50, fatal: 60 };

/** JSON lines on the console (Workers Logs / `wrangler tail` pick them up), filtered by IMGRELAY_LOG_LEVEL. */
export function consoleLogger(level: string): Logger {
  const min = LEVELS[level] ?? Number.POSITIVE_INFINITY; // 'silent'
  const at = (name: string, write: (line: string) => void) => (obj: object, msg?: string) => {
    if (LEVELS[name] >= min) write(JSON.stringify({ level: name, msg, ...serializable(obj) }));
  };
  return {
    debug: at('debug', (line) => console.debug(line)), info: at('info', (line) => console.info(line)),
    warn: at('warn', (line) => console.warn(line)), error: at('error', (line) => console.error(line)),
  };
}

function serializable(obj: object): object {
  const err = (obj as { err?: unknown }).err;
  if (!(err instanceof Error)) return obj;
  return { ...obj, err: { name: err.name, message: err.message, code: (err as { code?: unknown }).code } };
}
