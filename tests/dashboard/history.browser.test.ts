// The dashboard's "Last hour" charts in real Chromium, against the real
// service (a child process) flushing to the local Supabase stack: real events
// are posted in waves and flushed, and the lines the page drew must be the
// ones the service's own GET /local/history figures give (recomputed with the
// unit-tested geometry from what the service answers, not from the page),
// under the page's Content-Security-Policy without a single violation. Then
// the service is killed and the charts must say so instead of keeping lines.
// The panel's screenshot goes to artifacts/ (README's docs/dashboard-history.png).
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { chartGeometry, type SeriesInput, tickText } from "../../src/dashboard/page/chart-geometry.ts";
import { CHART_SIZE } from "../../src/dashboard/page/charts.tsx";
import type { HistoryView } from "../../src/ops/history.ts";
import { launchBrowser, type Page, type TestBrowser } from "../helpers/browser.ts";
import { type ServiceProcess, startService } from "../helpers/service.ts";
import { type SupabaseStack, startSupabaseStack } from "../helpers/supabase-stack.ts";
import { tempDir, waitFor } from "../helpers/tmp.ts";

const ARTIFACTS = join(import.meta.dir, "..", "..", "artifacts");
const TOKEN = "history-chart-test-token-0123456789";
const auth = { authorization: `Bearer ${TOKEN}`, "content-type": "application/json" };
type Mode = "paper" | "live";

let stack: SupabaseStack;
let service: ServiceProcess;
let browser: TestBrowser;
let page: Page;
const dir = tempDir("zoe-history-chart-");

let counter = 0;
async function post(mode: Mode, n: number) {
  const events = Array.from({ length: n }, () => ({
    mode,
    source: "bot",
    type: "STRATEGY",
    subtype: "SIGNAL",
    symbol: "AAPL",
    body: `${mode} chart event ${++counter}`,
  }));
  const res = await fetch(`${service.url}/local/events`, {
    method: "POST",
    headers: auth,
    body: JSON.stringify(events),
  });
  if (res.status !== 201) throw new Error(`POST /local/events answered ${res.status}: ${await res.text()}`);
}

async function history(mode: Mode): Promise<HistoryView> {
  const res = await fetch(`${service.url}/local/history?mode=${mode}`, { headers: auth });
  if (!res.ok) throw new Error(`GET /local/history answered ${res.status}`);
  return (await res.json()) as HistoryView;
}

/** The view as the page had it: the samples up to the newest one it drew. */
function upTo(view: HistoryView, newest: number): HistoryView {
  const n = view.t.filter((t) => t <= newest).length;
  const cut = <T>(a: T[]) => a.slice(0, n);
  return {
    ...view,
    t: cut(view.t),
    backlog: cut(view.backlog),
    ingest_per_s: cut(view.ingest_per_s),
    flushed_per_s: cut(view.flushed_per_s),
    flush_ms_avg: cut(view.flush_ms_avg),
    flush_ms_max: cut(view.flush_ms_max),
  };
}

interface DrawnSeries {
  name: string;
  d: string;
  points: number;
}
interface Drawn {
  paperT: number;
  liveT: number;
  charts: Record<string, { series: DrawnSeries[]; now: string }>;
}
/** Everything the panel shows, read in one go so a refresh cannot land between two reads. */
const drawn = (): Promise<Drawn> =>
  page.evaluate(() => {
    const panel = document.querySelector("[data-testid=history]")!;
    const charts: Drawn["charts"] = {};
    for (const id of ["backlog", "latency", "ingest"]) {
      const fig = panel.querySelector(`[data-testid=chart-${id}]`)!;
      charts[id] = {
        series: [...fig.querySelectorAll("[data-series]")].map((g) => ({
          name: g.getAttribute("data-series")!,
          d: g.querySelector("path")!.getAttribute("d")!,
          points: Number(g.getAttribute("data-points")),
        })),
        now: fig.querySelector(`[data-testid=chart-${id}-now]`)!.textContent ?? "",
      };
    }
    return {
      paperT: Number(panel.getAttribute("data-paper-t")),
      liveT: Number(panel.getAttribute("data-live-t")),
      charts,
    };
  });
const panelT = async (mode: Mode) => Number(await page.getAttribute("[data-testid=history]", `data-${mode}-t`));
const nodeCount = () => page.$$eval("[data-testid=history] *", (all) => all.length);
const cspViolations = () => page.evaluate(() => (window as unknown as { __csp: string[] }).__csp);

beforeAll(async () => {
  mkdirSync(ARTIFACTS, { recursive: true });
  [stack, browser] = await Promise.all([startSupabaseStack(), launchBrowser()]);
  service = await startService({
    dbPath: dir.file("zoe.db"),
    env: {
      SUPABASE_URL: stack.url,
      SUPABASE_SERVICE_ROLE_KEY: stack.serviceKey,
      SUPABASE_ANON_KEY: stack.anonKey,
      // Flushes slower than samples, so the backlog visibly rises and drains.
      ZOE_FLUSH_ACTIVE_MS: "1500",
      ZOE_FLUSH_OFFHOURS_MS: "1500",
      ZOE_HISTORY_INTERVAL_MS: "500",
      ZOE_API_TOKEN: TOKEN,
    },
  });
  page = await browser.newPage();
  await page.addInitScript(() => {
    const w = window as unknown as { __csp: string[] };
    w.__csp = [];
    document.addEventListener("securitypolicyviolation", (e) =>
      w.__csp.push(`${e.violatedDirective} ${e.blockedURI} ${e.sourceFile}:${e.lineNumber}`),
    );
  });
}, 120_000);

afterAll(async () => {
  await browser?.close();
  await service?.kill();
  await stack?.stop();
  dir.cleanup();
});

describe("the dashboard's last-hour charts in Chromium", () => {
  test("plot the backlog, flush latency and ingest rate the service's /local/history reports, with no CSP violation", async () => {
    await page.goto(`${service.url}/?mode=paper#token=${TOKEN}`);
    await page.waitForSelector("[data-testid=badge][data-status=local]", { timeout: 10_000 });
    await page.waitForSelector("[data-testid=history][data-state=ok]", { timeout: 10_000 });

    // Waves of real events, each in its own history interval.
    for (const [paper, live] of [
      [20, 5],
      [60, 10],
      [35, 0],
      [90, 25],
      [10, 40],
      [50, 15],
    ] as const) {
      const before = (await history("paper")).t.length;
      await post("paper", paper);
      if (live > 0) await post("live", live);
      await waitFor(async () => (await history("paper")).t.length > before, 10_000, "the next history sample");
    }
    const flushed = await fetch(`${service.url}/local/flush?wait=true`, { method: "POST", headers: auth });
    expect(flushed.status).toBe(200);
    // The page refetches on its own state refresh; wait for one that has the flushes and the drained backlog in it.
    const drainedAt = (await history("paper")).t.at(-1)!;
    await waitFor(
      async () => (await panelT("paper")) > drainedAt && (await panelT("live")) > drainedAt,
      15_000,
      "the page to draw samples after the flush",
    );

    const shown = await drawn();
    // Asked after the page drew, the service's answer holds at least the samples drawn.
    const [paperNow, liveNow] = await Promise.all([history("paper"), history("live")]);
    const paper = upTo(paperNow, shown.paperT);
    const live = upTo(liveNow, shown.liveT);
    // Real data went in: events were stored, sends were timed, and everything drained.
    expect(Math.max(...paper.ingest_per_s)).toBeGreaterThan(0);
    expect(Math.max(...paper.backlog)).toBeGreaterThan(0);
    expect(paper.flush_ms_avg.some((v) => v !== null)).toBe(true);
    expect(paper.backlog.at(-1)).toBe(0);

    const expected = (series: SeriesInput[]) =>
      chartGeometry(series, CHART_SIZE, { windowMs: paper.window_ms }).series.map((s) => ({
        name: s.name,
        d: s.d,
        points: s.points,
      }));
    expect(shown.charts.backlog!.series).toEqual(
      expected([
        { name: "paper", t: paper.t, values: paper.backlog },
        { name: "live", t: live.t, values: live.backlog },
      ]),
    );
    expect(shown.charts.latency!.series).toEqual(
      expected([
        { name: "mean", t: paper.t, values: paper.flush_ms_avg },
        { name: "max", t: paper.t, values: paper.flush_ms_max },
      ]),
    );
    expect(shown.charts.ingest!.series).toEqual(
      expected([
        { name: "stored", t: paper.t, values: paper.ingest_per_s },
        { name: "flushed", t: paper.t, values: paper.flushed_per_s },
      ]),
    );
    expect(shown.charts.backlog!.series[0]!.points).toBe(paper.t.length);

    // The current values are the newest samples'.
    expect(shown.charts.backlog!.now).toBe(`paper 0 · live ${live.backlog.at(-1)} events`);
    const lastMean = paper.flush_ms_avg.filter((v) => v !== null).at(-1)!;
    expect(shown.charts.latency!.now).toContain(`mean ${tickText(lastMean)}`);
    expect(shown.charts.ingest!.now).toBe(
      `stored ${tickText(paper.ingest_per_s.at(-1)!)} · flushed ${tickText(paper.flushed_per_s.at(-1)!)} events/s`,
    );

    expect(await cspViolations()).toEqual([]);
    expect(browser.errors()).toEqual([]);
    await page.locator("[data-testid=history]").screenshot({ path: join(ARTIFACTS, "dashboard-history.png") });
  }, 90_000);

  test("refreshes in place: a newer sample moves the lines without adding nodes", async () => {
    const before = { t: await panelT("paper"), nodes: await nodeCount() };
    await post("paper", 5);
    await waitFor(async () => (await panelT("paper")) > before.t, 15_000, "the page's next history refresh");
    expect(await nodeCount()).toBe(before.nodes);
    expect(await cspViolations()).toEqual([]);
  }, 30_000);

  test("say the local service is unreachable once it is gone, instead of showing its lines as live", async () => {
    await service.kill("SIGKILL");
    await page.waitForSelector("[data-testid=badge][data-status=remote]", { timeout: 10_000 });
    await page.waitForSelector("[data-testid=history][data-state=unreachable]", { timeout: 5_000 });
    for (const chart of ["backlog", "latency", "ingest"]) {
      expect(await page.textContent(`[data-testid=chart-${chart}-message]`)).toContain(
        "the local service is unreachable",
      );
      expect(await page.$$(`[data-testid=chart-${chart}] [data-series]`)).toHaveLength(0);
      expect(await page.textContent(`[data-testid=chart-${chart}-now]`)).toBe("");
    }
    expect(await cspViolations()).toEqual([]);
    // The listener does hear violations: an inline script the policy forbids is one.
    await page.evaluate(() => {
      const s = document.createElement("script");
      s.textContent = "void 0";
      document.body.append(s);
    });
    await waitFor(async () => (await cspViolations()).length === 1, 5_000, "the injected script's CSP violation");
    expect((await cspViolations())[0]).toStartWith("script-src");
  }, 30_000);
});
