#!/usr/bin/env node
// The `imgrelay` command: runs the compiled CLI (dist/node/cli.js, made by `npm run build`), so a production install
// needs no TypeScript, no tsx and no devDependencies.
import { existsSync } from 'node:fs';

const cli = new URL('../dist/node/cli.js', import.meta.url);
if (!existsSync(cli)) {
  process.stderr.write(`imgrelay: ${cli.pathname} is missing; build it with 'npm run build' (README, "Production install")\n`);
  process.exit(1);
}
const { runCli } = await import(cli.href);
process.exitCode = await runCli(process.argv.slice(2));
