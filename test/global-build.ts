/**
 * Vitest global setup: tests that spawn the service or the CLI as a process (lifecycle, drain, admin-cli, production
 * install …) run the compiled build, as `npm start` and `imgrelay` do. Built once per run, before any file starts,
 * and only when src/ changed since the last build (bin/build-if-stale.sh, the same check `npm start` makes), so
 * two files never compile into dist/ at the same time.
 */
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

export default function setup(): void {
  execFileSync('sh', [fileURLToPath(new URL('../bin/build-if-stale.sh', import.meta.url))], { stdio: 'inherit' });
}
