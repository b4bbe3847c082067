/** IMGRELAY_HEADER_RULES at the edge (moved out of src/edge.ts, which stays under 300 lines). */
import { ConfigError } from './config.js';
import type { Config } from './config.js';
import { type HeaderRule, loadHeaderRules } from './fetch/header-rules.js';

/** No file system at the edge: IMGRELAY_HEADER_RULES holds the rules themselves, as JSON. */
export function edgeHeaderRules(config: Config): readonly HeaderRule[] | undefined {
  const raw = config.headerRulesFile?.trim();
  if (!raw) return undefined;
  let json: unknown;
  try {
    json = JSON.parse(raw);
  } catch {
    throw new ConfigError([`IMGRELAY_HEADER_RULES: on Workers this holds the rules as JSON (there is no file to read)`]);
  }
  try {
    return loadHeaderRules(json);
  } catch (error) {
    throw new ConfigError([(error as Error).message]);
  }
}
