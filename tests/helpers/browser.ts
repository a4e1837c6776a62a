// Debian's Chromium driven by playwright-core, headless, with a fresh
// profile per launch. Nothing is downloaded: the browser must be at
// /usr/bin/chromium (.ci/run and scripts/test.ts install it with apt).
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type Browser, type BrowserContext, chromium, type Page } from "playwright-core";

export const CHROMIUM_PATH = process.env.ZOE_CHROMIUM ?? "/usr/bin/chromium";

export interface TestBrowser {
  browser: BrowserContext;
  newPage(): Promise<Page>;
  /** Console errors and page errors seen so far, for failure messages. */
  errors(): string[];
  close(): Promise<void>;
}

export function chromiumAvailable(): boolean {
  return existsSync(CHROMIUM_PATH);
}

export async function launchBrowser(): Promise<TestBrowser> {
  if (!chromiumAvailable()) throw new Error(`Chromium not found at ${CHROMIUM_PATH}: run apt-get install -y chromium`);
  const profile = mkdtempSync(join(tmpdir(), "zoe-chromium-"));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM_PATH,
    headless: true,
    viewport: { width: 1200, height: 800 },
    args: [
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
      "--disable-dev-shm-usage",
    ],
  });
  const errors: string[] = [];
  context.on("page", (page) => watch(page, errors));
  return {
    browser: context,
    async newPage() {
      const page = await context.newPage();
      return page;
    },
    errors: () => [...errors],
    async close() {
      await context.close().catch(() => {});
      rmSync(profile, { recursive: true, force: true });
    },
  };
}

function watch(page: Page, errors: string[]) {
  page.on("console", (m) => {
    if (m.type() === "error") errors.push(`console: ${m.text()}`);
  });
  page.on("pageerror", (e) => errors.push(`pageerror: ${e.message}`));
}

export type { Browser, Page };
