/**
 * The variables of the allowed-variants rules (issue #16 item 2): IMGRELAY_ALLOWED_WIDTHS / _HEIGHTS / _QUALITIES,
 * IMGRELAY_PRESETS and IMGRELAY_PRESETS_ONLY. Parsed once with the rest of the configuration (src/config.ts spreads
 * VARIANT_VARS into its table), so a bad preset fails at start-up with every other invalid variable.
 */
import { z } from 'zod';
import { bool, int, list, type VarSpec } from '../config-schema.js';
import { canonicalSpec, MAX_DIMENSION, targetSize } from '../url/options.js';
import { type PresetTable, parsePresets } from '../url/presets.js';

const numbers = (min: number, max: number) => list.pipe(z.array(int(min, max)));

const presetTable = z.string().transform((text, ctx): PresetTable => {
  try {
    return parsePresets(text);
  } catch (error) {
    ctx.addIssue({ code: 'custom', message: `name:options;… with query-form options (${(error as Error).message})` });
    return z.NEVER;
  }
});

export const VARIANT_VARS = {
  // Empty: any size (the cap IMGRELAY_MAX_OUTPUT_DIMENSION still applies). Set: sizes round up to the next value.
  ALLOWED_WIDTHS: [numbers(1, MAX_DIMENSION), ''],
  ALLOWED_HEIGHTS: [numbers(1, MAX_DIMENSION), ''],
  ALLOWED_QUALITIES: [numbers(1, 100), ''],
  PRESETS: [presetTable, ''],
  PRESETS_ONLY: [bool, 'false'],
} as const satisfies Record<string, VarSpec>;

export interface VariantRules {
  /** Ascending, without duplicates; empty = no rule on that axis. */
  widths: readonly number[];
  heights: readonly number[];
  qualities: readonly number[];
  presets: PresetTable;
  /** Only the original bytes or exactly a preset's options are served. */
  presetsOnly: boolean;
  /** The canonical option strings of the presets (what `presetsOnly` admits). */
  presetKeys: readonly string[];
}

interface VariantVars {
  ALLOWED_WIDTHS: number[]; ALLOWED_HEIGHTS: number[]; ALLOWED_QUALITIES: number[];
  PRESETS: PresetTable; PRESETS_ONLY: boolean;
}

const ascending = (values: readonly number[]) => [...new Set(values)].sort((a, b) => a - b);

export function toVariantRules(v: VariantVars): VariantRules {
  return {
    widths: ascending(v.ALLOWED_WIDTHS), heights: ascending(v.ALLOWED_HEIGHTS), qualities: ascending(v.ALLOWED_QUALITIES),
    presets: v.PRESETS, presetsOnly: v.PRESETS_ONLY,
    presetKeys: Object.values(v.PRESETS).map((spec) => canonicalSpec(spec)),
  };
}

/**
 * Settings that parse alone but contradict each other. A preset must itself be an allowed variant: otherwise the
 * rules would silently serve something other than what the operator wrote in it.
 */
export function variantProblems(v: VariantVars): string[] {
  const problems: string[] = [];
  if (v.PRESETS_ONLY && Object.keys(v.PRESETS).length === 0) {
    problems.push('IMGRELAY_PRESETS_ONLY=true: requires IMGRELAY_PRESETS (otherwise every transform is refused)');
  }
  for (const [name, spec] of Object.entries(v.PRESETS)) {
    const { width, height } = targetSize(spec);
    const checks: Array<[string, number | undefined, number[]]> = [
      ['WIDTHS', width, v.ALLOWED_WIDTHS], ['HEIGHTS', height, v.ALLOWED_HEIGHTS], ['QUALITIES', spec.quality, v.ALLOWED_QUALITIES],
    ];
    for (const [axis, value, allowed] of checks) {
      if (value !== undefined && allowed.length > 0 && !allowed.includes(value)) {
        problems.push(`IMGRELAY_PRESETS: preset "${name}" asks for ${value} (dpr applied), not in IMGRELAY_ALLOWED_${axis}`);
      }
    }
  }
  return problems;
}
