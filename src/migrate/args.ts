/** Argument parsing for the migration commands (`--name value`, `--name=value`, flags), strict about unknown names. */
import { list } from '../config-schema.js';

export class MigrateUsageError extends Error {}

export interface MigrateArgs {
  positional: string[];
  values: Map<string, string>;
  flags: Set<string>;
}

export function parseMigrateArgs(args: string[], valued: string[], flags: string[]): MigrateArgs {
  const parsed: MigrateArgs = { positional: [], values: new Map(), flags: new Set() };
  for (let i = 0; i < args.length; i++) {
    const match = /^--([a-z][a-z-]*)(?:=(.*))?$/.exec(args[i]);
    if (!match) {
      parsed.positional.push(args[i]);
      continue;
    }
    const [, name, inline] = match;
    if (flags.includes(name) && inline === undefined) parsed.flags.add(name);
    else if (valued.includes(name)) {
      const value = inline ?? args[++i];
      if (value === undefined) throw new MigrateUsageError(`--${name} needs a value`);
      parsed.values.set(name, value);
    } else throw new MigrateUsageError(`unknown option --${name}`);
  }
  return parsed;
}

/** `480,800,1200` → sorted distinct positive widths. */
export function parseWidths(value: string | undefined, fallback: number[]): number[] {
  if (value === undefined) return fallback;
  const widths = value.split(',').map((w) => w.trim()).filter(Boolean);
  if (widths.length === 0 || widths.some((w) => !/^\d{1,5}$/.test(w) || Number(w) === 0)) {
    throw new MigrateUsageError(`--widths: expected comma-separated positive integers, got ${JSON.stringify(value)}`);
  }
  return [...new Set(widths.map(Number))].sort((a, b) => a - b);
}

/** `a, b,,c` → `['a', 'b', 'c']`, as the service reads its comma-separated variables. */
export function parseList(value: string | undefined): string[] {
  return list.parse(value ?? '');
}
