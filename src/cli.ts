/**
 * `imgrelay serve` runs the service; `imgrelay purge <url…>` and `imgrelay warm <file-or-url…>` talk to the admin
 * API (IMGRELAY_ADMIN_URL, default http://127.0.0.1:8081, token from IMGRELAY_ADMIN_TOKEN).
 */
import { readFile } from 'node:fs/promises';
import { main } from './node.js';

const USAGE = `usage:
  imgrelay serve                     run the service (configured by IMGRELAY_* variables)
  imgrelay purge <url…>              purge proxy or source URLs from every tier
  imgrelay warm <file-or-url…>       warm image URLs, or every image of an HTML file
admin commands use IMGRELAY_ADMIN_URL (default http://127.0.0.1:8081) and IMGRELAY_ADMIN_TOKEN`;

export async function runCli(args: string[], env = process.env): Promise<number> {
  const [command, ...rest] = args;
  if (command === 'serve') {
    await main(env);
    return 0;
  }
  if ((command === 'purge' || command === 'warm') && rest.length > 0) {
    const body = command === 'purge' ? { urls: rest } : await warmBody(rest);
    return callAdmin(`/${command}`, body, env);
  }
  process.stderr.write(`${USAGE}\n`);
  return command === undefined || command === 'help' || command === '--help' ? 0 : 2;
}

/** `warm` takes image URLs, or HTML files whose images are to be warmed (their base given by `--base`). */
async function warmBody(items: string[]): Promise<object> {
  const urls = items.filter((item) => /^https?:\/\//i.test(item));
  const files = items.filter((item) => !/^https?:\/\//i.test(item));
  if (files.length === 0) return { urls };
  const html = (await Promise.all(files.map((file) => readFile(file, 'utf8')))).join('\n');
  return urls.length > 0 ? { html, base: urls[0] } : { html };
}

async function callAdmin(path: string, body: object, env: NodeJS.ProcessEnv): Promise<number> {
  const base = env.IMGRELAY_ADMIN_URL ?? 'http://127.0.0.1:8081';
  const response = await fetch(new URL(path, base), {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${env.IMGRELAY_ADMIN_TOKEN ?? ''}` },
    body: JSON.stringify(body),
  });
  process.stdout.write(`${JSON.stringify(await response.json(), null, 2)}\n`);
  return response.ok ? 0 : 1;
}
