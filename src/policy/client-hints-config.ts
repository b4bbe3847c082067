/**
 * IMGRELAY_CLIENT_HINTS (issue #19 item 2): off by default, because a hinted response varies on request headers
 * that a CDN in front must then key on too (README "Client hints"). Parsed once with the rest of the configuration.
 */
import { bool, type VarSpec } from '../config-schema.js';

export const CLIENT_HINT_VARS = {
  CLIENT_HINTS: [bool, 'false'],
} as const satisfies Record<string, VarSpec>;

export interface ClientHintsConfig {
  enabled: boolean;
}

export function toClientHintsConfig(v: { CLIENT_HINTS: boolean }): ClientHintsConfig {
  return { enabled: v.CLIENT_HINTS };
}
