// What a trader sees on the built-in page, in real Chromium against the real
// service (a child process, no Supabase configured): the feed's filters and
// the events a flood of ticks must not bury, the badge and panels once the
// service is gone, and the page's readability (dates with a time zone, P&L
// signs, the LIVE banner, contrast, stable columns, text inside the charts).
// One service and one page for the whole file: the machine is shared.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { launchBrowser, type Page, type TestBrowser } from "../helpers/browser.ts";
import { type ServiceProcess, startService } from "../helpers/service.ts";
import { tempDir, waitFor } from "../helpers/tmp.ts";

const json = { "content-type": "application/json" };
let service: ServiceProcess;
let browser: TestBrowser;
let page: Page;
const dir = tempDir("zoe-page-");

async function post(events: Record<string, unknown>[]): Promise<number[]> {
  const res = await fetch(`${service.url}/local/events`, {
    method: "POST",
    headers: json,
    body: JSON.stringify(events),
  });
  if (res.status !== 201) throw new Error(`POST /local/events answered ${res.status}: ${await res.text()}`);
  return ((await res.json()) as { events: { seq: number }[] }).events.map((e) => e.seq);
}
const ev = (mode: string, extra: Record<string, unknown>) => ({
  mode,
  source: "bot",
  type: "MARKET",
  subtype: "TICK",
  symbol: "AAPL",
  severity: "debug",
  body: "tick",
  ...extra,
});
const rowSeqs = (p: Page = page) =>
  p.$$eval("[data-testid=feed] tbody tr", (rows) => rows.map((r) => Number(r.getAttribute("data-seq"))));
const lastSeqShown = (p: Page, seq: number) =>
  p.waitForSelector(`[data-testid=last-seq]:text-is("${seq}")`, { timeout: 15_000 });

beforeAll(async () => {
  [service, browser] = await Promise.all([
    startService({ dbPath: dir.file("zoe.db"), env: { ZOE_CORS_ORIGINS: "" } }),
    launchBrowser(),
  ]);
  page = await browser.newPage();
}, 60_000);

afterAll(async () => {
  await browser?.close();
  if (service?.proc.exitCode === null) await service.kill();
  dir.cleanup();
});

describe("the built-in page in Chromium", () => {
  let fill = 0;

  test("a fill stays in view under 1,500 debug ticks, debug hidden by default", async () => {
    await page.goto(`${service.url}/?mode=paper`);
    await page.waitForSelector("[data-testid=badge][data-status=local]", { timeout: 15_000 });
    fill = (
      await post([ev("paper", { type: "ORDER", subtype: "BUY_FILLED", severity: "info", body: "bought 10 AAPL" })])
    )[0]!;
    let last = 0;
    for (let i = 0; i < 3; i++) last = (await post(Array.from({ length: 500 }, () => ev("paper", {})))).at(-1)!;
    await lastSeqShown(page, last);
    expect(await rowSeqs()).toEqual([fill]);
    expect(await page.isChecked("[data-testid=filter-sev-debug]")).toBe(false);
    // With debug shown, the window holds the newest 200 ticks and the fill besides.
    await page.click("[data-testid=filter-sev-debug]");
    await waitFor(async () => (await rowSeqs()).length === 201, 5_000, "200 ticks and the fill");
    const seqs = await rowSeqs();
    expect(seqs.at(-1)).toBe(fill);
    expect(seqs[0]).toBe(last);
    expect(new URL(page.url()).searchParams.get("sev")).toBe("all");
  }, 60_000);

  test("filters round-trip through the URL: set by hand, reloaded, and read from a link", async () => {
    await post([
      ev("paper", { type: "ORDER", subtype: "SELL_FILLED", symbol: "MSFT", severity: "info", body: "sold 3 MSFT" }),
      ev("paper", { type: "RISK", subtype: "LIMIT", symbol: "MSFT", severity: "warn", body: "limit near" }),
    ]);
    await page.selectOption("[data-testid=filter-type]", "ORDER");
    await page.fill("[data-testid=filter-symbol]", "msft");
    await waitFor(async () => (await rowSeqs()).length === 1, 5_000, "one MSFT order");
    const url = new URL(page.url());
    expect(Object.fromEntries(url.searchParams)).toEqual({ mode: "paper", sev: "all", type: "ORDER", symbol: "msft" });
    await page.reload();
    await page.waitForSelector("[data-testid=badge][data-status=local]", { timeout: 15_000 });
    expect(await page.inputValue("[data-testid=filter-type]")).toBe("ORDER");
    expect(await page.inputValue("[data-testid=filter-symbol]")).toBe("msft");
    expect(await page.isChecked("[data-testid=filter-sev-debug]")).toBe(true);
    const other = await browser.newPage();
    try {
      await other.goto(`${service.url}/?mode=paper&sev=warn`);
      await other.waitForSelector("[data-testid=feed] tbody tr", { timeout: 15_000 });
      expect(await other.isChecked("[data-testid=filter-sev-warn]")).toBe(true);
      expect(await other.isChecked("[data-testid=filter-sev-info]")).toBe(false);
      const warn = await other.$$eval("[data-testid=feed] tbody tr", (rows) =>
        rows.map((r) => r.querySelector(".sev")?.textContent),
      );
      expect(warn).toEqual(["warn"]);
    } finally {
      await other.close();
    }
    expect(browser.errors()).toEqual([]);
  }, 60_000);

  test("unknown figures show — rather than a made-up 0 or never", async () => {
    const live = await browser.newPage();
    try {
      await live.goto(`${service.url}/?mode=live`);
      await live.waitForSelector("[data-testid=badge][data-status=local]", { timeout: 15_000 });
      await live.waitForSelector("[data-testid=backlog]:text-is('0')", { timeout: 15_000 });
      expect(await live.textContent("[data-testid=last-seq]")).toBe("—");
      expect(await live.textContent("[data-testid=cash]")).toBe("—");
      expect(await live.textContent("[data-testid=snapshot]")).toBe("—");
      expect(await live.textContent("[data-testid=last-flush]")).toBe("— (Supabase not configured)");
      expect(await live.textContent("[data-testid=synced]")).toBe("—");
      expect((await live.textContent("[data-testid=source]"))?.startsWith("·")).toBe(false);
    } finally {
      await live.close();
    }
  }, 60_000);

  test("with no Supabase configured, killing the service shows OFFLINE and marks every figure 'as of' its time", async () => {
    const posted = await post([
      ev("paper", { type: "ORDER", subtype: "BUY_FILLED", severity: "info", body: "bought 1 AAPL" }),
    ]);
    await lastSeqShown(page, posted[0]!);
    expect(await page.$("[data-testid=state-as-of]")).toBeNull();
    expect(await page.$("[data-testid=flush-as-of]")).toBeNull();
    const backlog = await page.textContent("[data-testid=backlog]");
    await service.kill("SIGKILL");
    await page.waitForSelector("[data-testid=badge][data-status=offline]", { timeout: 5_000 });
    expect(await page.textContent("[data-testid=badge-label]")).toBe("OFFLINE");
    expect(await page.textContent("[data-testid=badge-detail]")).toBe(
      "local API unreachable · Supabase not configured",
    );
    expect(await page.textContent("[data-testid=badge]")).not.toContain("REMOTE");
    const stamp = /^as of \d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2} \S+$/;
    for (const id of ["state-as-of", "flush-as-of", "feed-as-of"]) {
      expect(await page.textContent(`[data-testid=${id}]`)).toMatch(stamp);
    }
    // The figures stay on screen, marked, not blanked.
    expect(await page.textContent("[data-testid=last-seq]")).toBe(String(posted[0]));
    expect(await page.textContent("[data-testid=backlog]")).toBe(backlog);
    expect(await page.getAttribute("[data-testid=state]", "data-stale")).toBe("true");
    expect((await page.textContent("[data-testid=source]"))?.startsWith("·")).toBe(false);
  }, 60_000);
});
