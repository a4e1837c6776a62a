// The dashboard in real Chromium, against the real service (a child process)
// flushing to the local Supabase stack. The four scenarios of the dashboard
// issue run in order on one page: LOCAL LIVE, the local API killed (REMOTE
// within 5 s), started again (LOCAL LIVE within 15 s, every event once), and
// the mode switch; then the static build from another origin, asking for the
// API token. Screenshots of both badge states go to artifacts/.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { launchBrowser, type Page, type TestBrowser } from "../helpers/browser.ts";
import { type ServiceProcess, startService } from "../helpers/service.ts";
import { type SupabaseStack, startSupabaseStack } from "../helpers/supabase-stack.ts";
import { tempDir, waitFor } from "../helpers/tmp.ts";

const ARTIFACTS = join(import.meta.dir, "..", "..", "artifacts");
const POLL_MS = 2000;
const TOKEN = "dashboard-test-token-0123456789";
const auth = { authorization: `Bearer ${TOKEN}`, "content-type": "application/json" };

let stack: SupabaseStack;
let service: ServiceProcess;
let browser: TestBrowser;
let page: Page;
const dir = tempDir("zoe-dashboard-");
let serviceEnv: Record<string, string>;
let port = 0;
// The static build (bun run build:dashboard) is served from its own origin.
const staticDir = tempDir("zoe-dashboard-static-");
let staticServer: ReturnType<typeof Bun.serve>;

async function startLocal(): Promise<ServiceProcess> {
  const s = await startService({ dbPath: dir.file("zoe.db"), port, env: serviceEnv });
  port = s.port;
  return s;
}

let counter = 0;
/** Posts `n` events as the bot would; returns their seqs. */
async function post(
  mode: "paper" | "live",
  n: number,
  kind: { severity?: string; subtype?: string } = {},
): Promise<number[]> {
  const events = Array.from({ length: n }, () => {
    counter++;
    const subtype = kind.subtype ?? (counter % 4 === 0 ? "BUY_FILLED" : "SIGNAL");
    return {
      mode,
      source: "bot",
      type: subtype === "SIGNAL" ? "STRATEGY" : "ORDER",
      subtype,
      symbol: counter % 3 ? "AAPL" : "MSFT",
      severity: kind.severity ?? "info",
      body: `${mode} event ${counter}: ${subtype.toLowerCase()}`,
    };
  });
  const res = await fetch(`${service.url}/local/events`, {
    method: "POST",
    headers: auth,
    body: JSON.stringify(events),
  });
  if (res.status !== 201) throw new Error(`POST /local/events answered ${res.status}: ${await res.text()}`);
  return ((await res.json()) as { events: { seq: number }[] }).events.map((e) => e.seq);
}

const badgeStatus = () => page.getAttribute("[data-testid=badge]", "data-status");
const rowSeqs = async (): Promise<number[]> =>
  (
    await page.$$eval("[data-testid=feed] tbody tr", (rows) => rows.map((r) => Number(r.getAttribute("data-seq"))))
  ).reverse();
const rowModes = () =>
  page.$$eval("[data-testid=feed] tbody tr", (rows) => [...new Set(rows.map((r) => r.getAttribute("data-mode")))]);
const syncedSeconds = async (): Promise<number | null> => {
  const text = (await page.textContent("[data-testid=badge-synced]").catch(() => null)) ?? "";
  const m = /^Supabase synced (\d+)s ago$/.exec(text);
  return m ? Number(m[1]) : null;
};
async function remoteCount(mode: string): Promise<number> {
  const [row] = await stack.sql`select count(*)::int as n from zoe_events where mode = ${mode}`;
  return row.n as number;
}
/** Waits until the feed shows exactly `seqs` (ascending). */
async function feedShows(seqs: number[], timeoutMs = 10_000) {
  await waitFor(
    async () => JSON.stringify(await rowSeqs()) === JSON.stringify(seqs),
    timeoutMs,
    `feed to show seqs ${seqs[0]}..${seqs.at(-1)}`,
  ).catch(async (error) => {
    throw new Error(
      `${(error as Error).message}; it shows ${JSON.stringify(await rowSeqs())}; browser: ${browser.errors().join(" | ")}`,
    );
  });
}

beforeAll(async () => {
  mkdirSync(ARTIFACTS, { recursive: true });
  [stack, browser] = await Promise.all([startSupabaseStack(), launchBrowser()]);
  serviceEnv = {
    SUPABASE_URL: stack.url,
    SUPABASE_SERVICE_ROLE_KEY: stack.serviceKey,
    SUPABASE_ANON_KEY: stack.anonKey,
    ZOE_FLUSH_ACTIVE_MS: "300",
    ZOE_FLUSH_OFFHOURS_MS: "300",
    ZOE_DASHBOARD_POLL_MS: String(POLL_MS),
    ZOE_API_TOKEN: TOKEN,
    ZOE_CORS_ORIGINS: "",
  };
  staticServer = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    fetch: (req) => {
      const name = new URL(req.url).pathname.replace(/^\/$/, "/index.html").slice(1);
      const file = Bun.file(join(staticDir.path, name));
      return file.size > 0 ? new Response(file) : new Response("not found", { status: 404 });
    },
  });
  serviceEnv.ZOE_CORS_ORIGINS = `http://127.0.0.1:${staticServer.port}`;
  service = await startLocal();
  page = await browser.newPage();
  // Count the EventSources the page holds open, to catch leaks on mode switches.
  await page.addInitScript(() => {
    const Native = window.EventSource;
    const w = window as unknown as { __openStreams: number };
    w.__openStreams = 0;
    window.EventSource = class extends Native {
      #open = true;
      constructor(url: string | URL, init?: EventSourceInit) {
        super(url, init);
        w.__openStreams++;
      }
      override close() {
        if (this.#open) w.__openStreams--;
        this.#open = false;
        super.close();
      }
    };
  });
}, 120_000);

afterAll(async () => {
  await browser?.close();
  await service?.kill();
  await stack?.stop();
  await staticServer?.stop(true);
  dir.cleanup();
  staticDir.cleanup();
});

describe("the dashboard in Chromium", () => {
  let paper: number[] = [];

  test("1. opens LOCAL LIVE, shows events as the bot posts them, and the synced-ago text advances", async () => {
    const state = {
      mode: "paper",
      cash: 10234.5,
      holdings: { AAPL: 10, MSFT: 3 },
      positions: [{ symbol: "AAPL", qty: 10, avg_price: 187.12 }],
    };
    expect(
      (await fetch(`${service.url}/local/state`, { method: "POST", headers: auth, body: JSON.stringify(state) }))
        .status,
    ).toBe(201);
    // The token travels in the fragment: never sent to a server, dropped from the address bar.
    await page.goto(`${service.url}/?mode=paper#token=${TOKEN}`);
    await page.waitForSelector("[data-testid=badge][data-status=local]", { timeout: 10_000 });
    expect(page.url()).not.toContain(TOKEN);
    expect(await page.textContent("[data-testid=badge-label]")).toBe("LOCAL LIVE");
    paper = await post("paper", 5);
    await feedShows(paper);
    paper.push(...(await post("paper", 1, { severity: "critical", subtype: "KILL_SWITCH" })));
    await feedShows(paper);
    expect(await page.getAttribute(`tr[data-seq="${paper.at(-1)}"]`, "class")).toContain("sev-critical");
    await page.waitForSelector("[data-testid=cash]:has-text('10,234.50')", { timeout: 10_000 });
    // Flushed to Supabase; the badge shows when, and the seconds tick on.
    await waitFor(async () => (await remoteCount("paper")) === paper.length, 15_000, "the flush to Supabase");
    const first = await waitFor(syncedSeconds, 15_000, "the synced-ago text");
    const later = await waitFor(
      async () => {
        const s = await syncedSeconds();
        return s !== null && s > first ? s : null;
      },
      5_000,
      "the synced-ago text to advance",
    );
    expect(later).toBeGreaterThan(first);
    await page.screenshot({ path: join(ARTIFACTS, "dashboard-local-live.png") });
  }, 60_000);

  test("2. shows REMOTE within 5 s of the local API being killed, with Supabase's events and zoe_health's sync time", async () => {
    await waitFor(async () => (await remoteCount("paper")) === paper.length, 15_000, "everything flushed");
    const t0 = performance.now();
    await service.kill("SIGKILL");
    await page.waitForSelector("[data-testid=badge][data-status=remote]", { timeout: 5_000 });
    const elapsed = performance.now() - t0;
    expect(elapsed).toBeLessThan(5_000);
    expect(await page.textContent("[data-testid=badge-label]")).toBe("REMOTE");
    expect(await page.textContent("[data-testid=badge-polling]")).toBe(`Polling every ${POLL_MS / 1000}s`);
    // The panels now come from Supabase.
    await page.waitForSelector("[data-testid=source]:has-text('Supabase (zoe_health)')", { timeout: 5_000 });
    expect(await page.textContent("[data-testid=cash]")).toBe("10,234.50"); // from zoe_state
    const remoteSeqs = (await stack.sql`select seq from zoe_events where mode = 'paper' order by seq`).map(
      (r: { seq: string | number }) => Number(r.seq),
    );
    await feedShows(remoteSeqs);
    const [health] = await stack.sql`select last_flush_ts from zoe_health where mode = 'paper'`;
    const expected = Math.floor((Date.now() - new Date(health.last_flush_ts).getTime()) / 1000);
    const shown = await waitFor(syncedSeconds, 3_000, "the synced-ago text");
    expect(Math.abs(shown - expected)).toBeLessThanOrEqual(2);
    await page.screenshot({ path: join(ARTIFACTS, "dashboard-remote.png") });
    console.log(`dashboard: REMOTE ${Math.round(elapsed)} ms after SIGKILL`);
  }, 60_000);

  test("3. returns to LOCAL LIVE within 15 s of a restart, with every event exactly once in seq order", async () => {
    // Restart while the page's next probe is a few seconds off, so the bot's
    // next events land while the page is still REMOTE.
    await page.waitForFunction(
      () => Number(document.querySelector("[data-testid=badge]")?.getAttribute("data-next-probe")) - Date.now() > 5_000,
      null,
      { timeout: 20_000 },
    );
    const t0 = performance.now();
    service = await startLocal();
    paper.push(...(await post("paper", 4)));
    expect(await badgeStatus()).toBe("remote");
    await page.waitForSelector("[data-testid=badge][data-status=local]", { timeout: 15_000 });
    const elapsed = performance.now() - t0;
    expect(elapsed).toBeLessThan(15_000);
    paper.push(...(await post("paper", 2)));
    await feedShows(paper);
    const seqs = await rowSeqs();
    expect(new Set(seqs).size).toBe(seqs.length);
    expect(seqs).toEqual([...seqs].sort((a, b) => a - b));
    console.log(`dashboard: LOCAL LIVE again ${Math.round(elapsed)} ms after restart`);
  }, 60_000);

  test("4. a mode switch shows only that mode's events and leaves one stream open", async () => {
    const live = await post("live", 3);
    await page.click("[data-testid=mode-live]");
    await page.waitForSelector("[data-testid=badge][data-status=local]", { timeout: 10_000 });
    await feedShows(live);
    expect(await rowModes()).toEqual(["live"]);
    expect(await page.evaluate(() => (window as unknown as { __openStreams: number }).__openStreams)).toBe(1);
    await page.click("[data-testid=mode-paper]");
    await feedShows(paper);
    expect(await rowModes()).toEqual(["paper"]);
    expect(await page.evaluate(() => (window as unknown as { __openStreams: number }).__openStreams)).toBe(1);
    expect(
      browser
        .errors()
        .filter((e) => !/ERR_INCOMPLETE_CHUNKED_ENCODING|ERR_CONNECTION_REFUSED|ERR_EMPTY_RESPONSE/.test(e)),
    ).toEqual([]);
  }, 60_000);

  test("the static build runs from another origin and asks for the API token", async () => {
    const build = Bun.spawn(["bun", "run", "build:dashboard", "--outdir", staticDir.path], {
      cwd: join(import.meta.dir, "..", ".."),
      env: {
        PATH: process.env.PATH ?? "",
        HOME: process.env.HOME ?? "/tmp",
        ZOE_DASHBOARD_LOCAL_API_URL: service.url,
        SUPABASE_URL: stack.url,
        SUPABASE_ANON_KEY: stack.anonKey,
      },
      stdout: "pipe",
      stderr: "pipe",
    });
    expect(await build.exited).toBe(0);
    const other = await browser.newPage();
    try {
      await other.goto(`http://127.0.0.1:${staticServer.port}/?mode=paper`);
      // No token yet: the local API refuses, the page says so and falls back.
      await other.waitForSelector("form.token", { timeout: 10_000 });
      expect(await other.getAttribute("[data-testid=badge]", "data-status")).toBe("remote");
      await other.fill("form.token input", TOKEN);
      await other.click("form.token button");
      await other.waitForSelector("[data-testid=badge][data-status=local]", { timeout: 10_000 });
      await waitFor(
        async () => (await other.$$("[data-testid=feed] tbody tr")).length === paper.length,
        10_000,
        "the static page's feed",
      );
    } finally {
      await other.close();
    }
  }, 60_000);
});
