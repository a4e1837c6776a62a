// What a trader sees on the built-in page, in real Chromium against the real
// service (a child process, no Supabase configured): the feed's filters and
// the events a flood of ticks must not bury, the badge and panels once the
// service is gone, and the page's readability (dates with a time zone, P&L
// signs, the LIVE banner, contrast, stable columns, text inside the charts).
// One service and one page for the whole file: the machine is shared.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { launchBrowser, type Page, type TestBrowser } from "../helpers/browser.ts";
import { type ServiceProcess, startService } from "../helpers/service.ts";
import { tempDir, waitFor } from "../helpers/tmp.ts";

const ARTIFACTS = join(import.meta.dir, "..", "..", "artifacts");
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
  mkdirSync(ARTIFACTS, { recursive: true });
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

  test("a page opened after 1,500 debug ticks still shows the fill and the error that came before them", async () => {
    // Live mode here: paper's page has been open all along, this one opens only after the flood.
    const [fill, error] = await post([
      ev("live", { type: "ORDER", subtype: "BUY_FILLED", severity: "info", body: "bought 5 AAPL" }),
      ev("live", { type: "SYSTEM", subtype: "BROKER_DOWN", severity: "error", body: "broker down" }),
    ]);
    let last = 0;
    for (let i = 0; i < 3; i++) last = (await post(Array.from({ length: 500 }, () => ev("live", {})))).at(-1)!;
    const late = await browser.newPage();
    try {
      await late.goto(`${service.url}/?mode=live`);
      await late.waitForSelector("[data-testid=badge][data-status=local]", { timeout: 15_000 });
      await lastSeqShown(late, last);
      await waitFor(async () => (await rowSeqs(late)).length === 2, 10_000, "the fill and the error");
      expect(await rowSeqs(late)).toEqual([error!, fill!]);
      // Beside the newest 200 ticks the stream replayed, not instead of them.
      await late.goto(`${service.url}/?mode=live&sev=all`);
      await late.waitForSelector("[data-testid=badge][data-status=local]", { timeout: 15_000 });
      await waitFor(async () => (await rowSeqs(late)).length === 202, 10_000, "200 ticks, the error and the fill");
      const seqs = await rowSeqs(late);
      expect(seqs.slice(0, 200)).toEqual(Array.from({ length: 200 }, (_, i) => last - i));
      expect(seqs.slice(200)).toEqual([error!, fill!]);
    } finally {
      await late.close();
    }
    expect(browser.errors()).toEqual([]);
  }, 60_000);

  test("readability: LIVE banner, dates with a time zone, signed and coloured P&L, fixed columns, a big badge, AA contrast", async () => {
    // The bot's keys in its own order; the table's order must not follow it.
    const state = {
      mode: "paper",
      cash: 5000,
      holdings: { MSFT: 3, AAPL: 10 },
      positions: [
        { unrealized_pnl: 12.5, qty: 10, symbol: "AAPL", avg_price: 187.12 },
        { avg_price: 410, symbol: "MSFT", unrealized_pnl: -3.1, qty: 3 },
      ],
    };
    const res = await fetch(`${service.url}/local/state`, {
      method: "POST",
      headers: json,
      body: JSON.stringify(state),
    });
    expect(res.status).toBe(201);
    await page.goto(`${service.url}/?mode=paper&sev=all`);
    await page.waitForSelector("[data-testid=cash]:text-is('5,000.00')", { timeout: 15_000 });
    expect(await page.getAttribute("[data-testid=mode-banner]", "data-mode")).toBe("paper");
    expect(await page.$(".mode-banner.live")).toBeNull();
    const heads = await page.$$eval("[data-testid=state] table.mini th", (ths) => ths.map((t) => t.textContent));
    expect(heads).toEqual(["symbol", "qty", "avg_price", "unrealized_pnl"]);
    const pnl = await page.$$eval("[data-testid=state] .pnl", (cells) =>
      cells.map((c) => ({ text: c.textContent, cls: c.className, color: getComputedStyle(c).color })),
    );
    expect(pnl.map((p) => [p.text, p.cls])).toEqual([
      ["+12.50", "pnl up"],
      ["\u22123.10", "pnl down"],
    ]);
    expect(pnl[0]!.color).not.toBe(pnl[1]!.color);
    const time = await page.textContent("[data-testid=feed] tbody tr td.time");
    expect(time).toMatch(/^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}\.\d{3} \S+$/);
    expect(await page.textContent("[data-testid=snapshot]")).toMatch(/^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2} \S+$/);
    const badgePx = await page.$eval(".badge-title", (el) => Number.parseFloat(getComputedStyle(el).fontSize));
    expect(badgePx).toBeGreaterThanOrEqual(24);
    // WCAG AA: 4.5:1 for every severity pill (the filter bar shows all five) and the status texts.
    const ratios = await page.evaluate(() => {
      const rgb = (c: string) => (c.match(/[\d.]+/g) ?? []).slice(0, 3).map(Number);
      const lum = (c: string) => {
        const [r, g, b] = rgb(c).map((v) => {
          const s = v / 255;
          return s <= 0.03928 ? s / 12.92 : ((s + 0.055) / 1.055) ** 2.4;
        });
        return 0.2126 * r! + 0.7152 * g! + 0.0722 * b!;
      };
      const bgOf = (el: Element | null): string => {
        for (let e = el; e; e = e.parentElement) {
          const bg = getComputedStyle(e).backgroundColor;
          if (bg !== "rgba(0, 0, 0, 0)" && bg !== "transparent") return bg;
        }
        return "rgb(255, 255, 255)";
      };
      const out: Record<string, number> = {};
      const probe = document.createElement("span");
      document.body.append(probe);
      for (const [name, el] of [
        ...[...document.querySelectorAll("[data-testid=filters] .sev")].map((e) => [e.textContent ?? "", e] as const),
        ["badge", document.querySelector(".badge-title")],
        ["banner", document.querySelector(".mode-banner")],
      ] as const) {
        const a = lum(getComputedStyle(el!).color);
        const b = lum(bgOf(el));
        out[name] = (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
      }
      for (const cls of ["bad", "warn"]) {
        probe.className = cls;
        const a = lum(getComputedStyle(probe).color);
        out[cls] = (Math.max(a, 1) + 0.05) / (Math.min(a, 1) + 0.05);
      }
      probe.remove();
      return out;
    });
    expect(Object.keys(ratios).sort()).toEqual(
      ["bad", "badge", "banner", "critical", "debug", "error", "info", "warn"].sort(),
    );
    for (const [name, ratio] of Object.entries(ratios)) expect({ name, ok: ratio >= 4.5 }).toEqual({ name, ok: true });
    // Live mode: a banner no one can take for paper, from a link and from the toggle alike.
    await page.click("[data-testid=mode-live]");
    await page.waitForSelector("[data-testid=mode-banner][data-mode=live]", { timeout: 5_000 });
    expect(new URL(page.url()).searchParams.get("mode")).toBe("live");
    expect(await page.textContent("[data-testid=mode-banner]")).toContain("LIVE TRADING");
    expect(await page.$eval(".mode-banner", (el) => getComputedStyle(el).backgroundColor)).toBe("rgb(185, 28, 28)");
    await page.screenshot({ path: join(ARTIFACTS, "dashboard-live-mode.png") });
    await page.goto(`${service.url}/?mode=live`);
    await page.waitForSelector("[data-testid=mode-banner][data-mode=live]", { timeout: 15_000 });
    await page.goto(`${service.url}/?mode=paper`);
    await page.waitForSelector("[data-testid=badge][data-status=local]", { timeout: 15_000 });
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
    // The charts say the history is unreachable, inside their axes.
    await page.waitForSelector("[data-testid=history][data-state=unreachable]", { timeout: 10_000 });
    const boxes = await page.$$eval("[data-testid=history] svg", (svgs) =>
      svgs.map((svg) => {
        const [xAxis, yAxis] = [...svg.querySelectorAll("line.axis")] as SVGLineElement[];
        const text = svg.querySelector("text.message") as SVGTextElement;
        const box = text.getBBox();
        return {
          text: text.textContent,
          inside:
            box.x >= Number(yAxis!.getAttribute("x1")) &&
            box.x + box.width <= Number(xAxis!.getAttribute("x2")) &&
            box.y >= Number(yAxis!.getAttribute("y1")) &&
            box.y + box.height <= Number(xAxis!.getAttribute("y1")),
        };
      }),
    );
    expect(boxes).toEqual(
      Array(3).fill({ text: "the local service is unreachable: its history is not available", inside: true }),
    );
    await page.screenshot({ path: join(ARTIFACTS, "dashboard-offline.png") });
  }, 60_000);
});
