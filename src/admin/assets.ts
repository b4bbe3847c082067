/**
 * The dashboard's charting library, uPlot (MIT, ~50 KB minified), served by the admin listener itself so the page
 * works offline and its CSP allows scripts from 'self' only. Read once at start-up from the installed package.
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';

export interface AdminAssets {
  uplotJs: string;
  uplotCss: string;
}

export function loadAdminAssets(): AdminAssets {
  const require = createRequire(import.meta.url);
  const read = (file: string) => readFileSync(require.resolve(`uplot/dist/${file}`), 'utf8');
  return { uplotJs: read('uPlot.iife.min.js'), uplotCss: read('uPlot.min.css') };
}
