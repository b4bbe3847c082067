/**
 * Named presets (IMGRELAY_PRESETS, `thumb:w=300&h=300&fit=cover;hero:w=1600&output=auto`), used as `p=thumb` in
 * the query form and `preset=thumb` in the path form. They are expanded WHILE PARSING, so everything after the
 * parser (the signature, the variant rules, the cache key) sees ordinary options: `p=thumb` and its spelled-out
 * options are one request and one entry. Portable: no `node:`, no sharp.
 *
 * Explicit options beside a preset override it (imgproxy's order: the preset first, then the URL's own options),
 * wherever they stand in the URL: `p=thumb&w=400` is a 400×300 cover.
 */
import { fail } from '../errors.js';
import type { TransformSpec } from '../transform/types.js';
import { OPTIONS, type RequestOptions, parseQueryOptions } from './options.js';

/** Preset name → its options. Empty when none are configured: then `p`/`preset` are ordinary unknown parameters. */
export type PresetTable = Readonly<Record<string, Readonly<TransformSpec>>>;

export const PRESET_QUERY_NAME = 'p';
export const PRESET_PATH_NAME = 'preset';

const NAME = /^[a-z0-9][a-z0-9_-]{0,63}$/i;
const QUERY_SPEC_NAMES: ReadonlySet<string> = new Set(Object.values(OPTIONS)
  .flatMap((def) => ('query' in def ? [...def.query.names] : [])));

/**
 * Parses the IMGRELAY_PRESETS text. Throws an Error naming the preset and the option at fault: every option must
 * be a transform option in query-form spelling and its value must parse, so a typo fails at start-up, not later
 * as a 400 on every page that uses the preset.
 */
export function parsePresets(text: string): PresetTable {
  const table: Record<string, TransformSpec> = {};
  for (const part of text.split(';').map((p) => p.trim()).filter(Boolean)) {
    const colon = part.indexOf(':');
    const name = colon < 0 ? part : part.slice(0, colon).trim();
    if (!NAME.test(name)) throw new Error(`preset ${JSON.stringify(name)}: expected name:options (letters, digits, - and _)`);
    if (Object.hasOwn(table, name)) throw new Error(`preset "${name}" is defined twice`);
    table[name] = presetOptions(name, colon < 0 ? '' : part.slice(colon + 1));
  }
  return table;
}

function presetOptions(name: string, query: string): TransformSpec {
  const params = new URLSearchParams(query.trim());
  if ([...params.keys()].length === 0) throw new Error(`preset "${name}": no options`);
  for (const key of params.keys()) {
    if (!QUERY_SPEC_NAMES.has(key)) {
      throw new Error(`preset "${name}": "${key}" is not a transform option (query-form names: ${[...QUERY_SPEC_NAMES].join(', ')})`);
    }
  }
  try {
    return parseQueryOptions(params).spec;
  } catch (error) {
    throw new Error(`preset "${name}": ${(error as Error).message}`);
  }
}

/**
 * The request's options with its preset (if any) applied underneath: preset fields first, explicit ones override.
 * An unknown name is a 400 naming it. With no presets configured, the name is ignored like any unknown parameter.
 */
export function withPreset(options: RequestOptions, name: string | null | undefined, presets?: PresetTable): RequestOptions {
  if (name === null || name === undefined || !presets || Object.keys(presets).length === 0) return options;
  if (!Object.hasOwn(presets, name)) {
    const known = Object.keys(presets).join(', ');
    fail('E_BAD_REQUEST', `Unknown preset ${JSON.stringify(name.slice(0, 64))}: the presets are ${known}`);
  }
  // Everything else the URL carries (its response options, its signature) stays as parsed.
  return { ...options, spec: { ...presets[name], ...options.spec } };
}

/** The `preset=` value of a path-form option segment (`width=300,preset=thumb`), the last one if repeated. */
export function pathPresetName(segment: string): string | undefined {
  let name: string | undefined;
  for (const part of segment.split(',')) {
    const eq = part.indexOf('=');
    if (eq > 0 && part.slice(0, eq).trim() === PRESET_PATH_NAME) name = part.slice(eq + 1).trim();
  }
  return name;
}

/** Query-form options (the caller removed `url`) with `p=` expanded. */
export function parseQueryWithPreset(params: URLSearchParams, presets?: PresetTable): RequestOptions {
  return withPreset(parseQueryOptions(params), params.get(PRESET_QUERY_NAME), presets);
}

/** IMGRELAY_LEGACY_OPTIONS (query syntax, parsed once at start-up): `p=hero` names a preset there too. */
export function parseLegacyWithPresets(text: string, presets?: PresetTable): RequestOptions {
  return parseQueryWithPreset(new URLSearchParams(text.replace(/^\?/, '')), presets);
}
