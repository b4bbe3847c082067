/**
 * Headless Chromium (Debian's /usr/bin/chromium) driven by playwright-core, for tests of pages a person uses.
 * A fresh profile directory per launch; the flags keep it from reaching any network service of its own.
 * No Chromium is a failure, not a skip: .ci/run installs it (.ci/apt-packages).
 */
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type BrowserContext, type Page, chromium } from 'playwright-core';

export const CHROMIUM = '/usr/bin/chromium';
const ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync'];

export interface TestBrowser {
  context: BrowserContext;
  close(): Promise<void>;
}

/** `deviceScaleFactor`: the screen's DPR (client hints, srcset); 1 unless given. */
export async function launchChromium(options: { deviceScaleFactor?: number } = {}): Promise<TestBrowser> {
  if (!existsSync(CHROMIUM)) {
    throw new Error(`${CHROMIUM} is missing: apt-get install chromium (it is listed in .ci/apt-packages)`);
  }
  // playwright passes the profile directory as --user-data-dir itself (a persistent context on a fresh dir).
  const profile = await mkdtemp(join(tmpdir(), 'imgrelay-chromium-'));
  try {
    const context = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM, headless: true, args: ARGS, timeout: 60_000, ...options,
    });
    return {
      context,
      close: async () => {
        await context.close();
        await rm(profile, { recursive: true, force: true });
      },
    };
  } catch (error) {
    await rm(profile, { recursive: true, force: true });
    throw error;
  }
}

/**
 * Collects the page's uncaught errors and console errors (a CSP violation is one) into `problems`. HTTP errors a
 * test provokes (a 401, the favicon's 401) are logged as "Failed to load resource": not problems.
 */
export function recordProblems(page: Page, problems: string[]): void {
  page.on('console', (message) => {
    if (message.type() === 'error' && !message.text().startsWith('Failed to load resource')) problems.push(message.text());
  });
  page.on('pageerror', (error) => problems.push(error.message));
}
