/**
 * Node only: everything the service reads from its environment at start-up, checked together, so a broken
 * deployment hears about every problem at once (one list, exit 1, no stack trace) instead of one per restart:
 * the IMGRELAY_* variables, the legacy worker's default options (IMGRELAY_LEGACY_OPTIONS) and the header-rules
 * file IMGRELAY_HEADER_RULES names (readable, JSON, valid rules).
 */
import { readFileSync } from 'node:fs';
import { type Config, ConfigError, parseConfig } from './config.js';
import { type HeaderRule, HeaderRulesError, loadHeaderRules } from './fetch/header-rules.js';
import type { RequestOptions } from './url/options.js';
import type { VariantRules } from './policy/variants-config.js';
import { parseLegacyUnderRules } from './policy/variants.js';
import { parsePresets } from './url/presets.js';

export interface StartInputs {
  headerRules?: HeaderRule[];
  legacyOptions?: RequestOptions;
}

/** Parses and checks the whole start-up input; throws one ConfigError naming every problem. */
export function parseStartInputs(env: Record<string, string | undefined>): StartInputs & { config: Config } {
  const problems: string[] = [];
  const attempt = <T>(parse: () => T): T | undefined => {
    try {
      return parse();
    } catch (error) {
      if (!(error instanceof ConfigError)) throw error;
      problems.push(...error.problems);
      return undefined;
    }
  };
  const config = attempt(() => parseConfig(env));
  const inputs = attempt(() => startInputsOf(env.IMGRELAY_HEADER_RULES ?? '', env.IMGRELAY_LEGACY_OPTIONS ?? '',
    config ? config.variants : presetsAlone(env.IMGRELAY_PRESETS)));
  if (problems.length > 0 || !config || !inputs) throw new ConfigError(problems);
  return { config, ...inputs };
}

/**
 * IMGRELAY_PRESETS on its own, for when another variable failed: the legacy options' preset is still checked in the
 * same list. Invalid presets are reported by parseConfig already; then a `p=` there is not judged against them.
 */
function presetsAlone(text: string | undefined): VariantRules | undefined {
  try {
    const presets = parsePresets(text ?? '');
    return { widths: [], heights: [], qualities: [], presets, presetsOnly: false, presetKeys: [] };
  } catch {
    return undefined;
  }
}

/**
 * The inputs a parsed Config only names: the rules file's rules, the parsed legacy options. `variants`: their
 * presets, so the legacy options may name one (`p=hero`), and presets-only, which they must pass.
 */
export function startInputsOf(rulesFile: string, legacyOptions: string, variants?: VariantRules): StartInputs {
  const problems: string[] = [];
  let headerRules: HeaderRule[] | undefined;
  let legacy: RequestOptions | undefined;
  try {
    headerRules = rulesFile ? readHeaderRules(rulesFile) : undefined;
  } catch (error) {
    problems.push(...headerRulesProblems(rulesFile, error));
  }
  try {
    legacy = legacyOptions ? parseLegacyUnderRules(legacyOptions, variants) : undefined;
  } catch (error) {
    problems.push(`IMGRELAY_LEGACY_OPTIONS=${JSON.stringify(legacyOptions)}: ${(error as Error).message}`);
  }
  if (problems.length > 0) throw new ConfigError(problems);
  return { headerRules, legacyOptions: legacy };
}

function readHeaderRules(path: string): HeaderRule[] {
  return loadHeaderRules(JSON.parse(readFileSync(path, 'utf8')));
}

function headerRulesProblems(path: string, error: unknown): string[] {
  const name = `IMGRELAY_HEADER_RULES=${JSON.stringify(path)}`;
  if (error instanceof HeaderRulesError) return error.problems.map((problem) => `${name}: ${problem}`);
  if (error instanceof SyntaxError) return [`${name}: not valid JSON (${error.message})`];
  const code = (error as NodeJS.ErrnoException).code;
  if (code) return [`${name}: cannot read the file (${code})`];
  throw error;
}
