// A hung local link in real Chromium: the real service (a child process) is
// frozen with SIGSTOP, the way a hung box or a path that drops packets looks
// to a browser (connections accepted or silently stalled, never an error).
// The page must leave LOCAL LIVE within 5 s of the freeze (OFFLINE here: no
// Supabase to fall back to), come back to LOCAL LIVE
// once SIGCONT lets it answer, and not flap on a freeze under a second.
// Switch times come from the page's own log of badge changes (Date.now() on
// both sides: one machine, one wall clock) and are printed for the report.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { launchBrowser, type Page, type TestBrowser } from "../helpers/browser.ts";
import { type ServiceProcess, startService } from "../helpers/service.ts";
import { tempDir, waitFor } from "../helpers/tmp.ts";

const TOKEN = "hung-link-test-token-0123456789";
const auth = { authorization: `Bearer ${TOKEN}`, "content-type": "application/json" };
// How long the "blip" lasts, and how long the page is then watched for a flap.
const BLIP_MS = 800;
const WATCH_AFTER_BLIP_MS = 6_000;
const HANG_ROUNDS = 3;

let service: ServiceProcess;
let browser: TestBrowser;
let page: Page;
const dir = tempDir("zoe-hung-link-");
let stopped = false;

function freeze() {
  service.proc.kill("SIGSTOP");
  stopped = true;
}
function thaw() {
  service.proc.kill("SIGCONT");
  stopped = false;
}

let counter = 0;
async function post(n: number): Promise<number[]> {
  const events = Array.from({ length: n }, () => ({
    mode: "paper",
    source: "bot",
    type: "STRATEGY",
    subtype: "SIGNAL",
    body: `hung-link event ${++counter}`,
  }));
  const res = await fetch(`${service.url}/local/events`, {
    method: "POST",
    headers: auth,
    body: JSON.stringify(events),
  });
  if (res.status !== 201) throw new Error(`POST /local/events answered ${res.status}: ${await res.text()}`);
  return ((await res.json()) as { events: { seq: number }[] }).events.map((e) => e.seq);
}

interface Change {
  status: string;
  at: number;
}
/** The badge changes the page logged since `since` (epoch ms). */
const changesSince = async (since: number): Promise<Change[]> =>
  (await page.evaluate(() => (window as unknown as { __badge: Change[] }).__badge)).filter((c) => c.at >= since);
const rowSeqs = async (): Promise<number[]> =>
  (
    await page.$$eval("[data-testid=feed] tbody tr", (rows) => rows.map((r) => Number(r.getAttribute("data-seq"))))
  ).reverse();
async function feedShows(seqs: number[], timeoutMs = 10_000) {
  await waitFor(
    async () => JSON.stringify(await rowSeqs()) === JSON.stringify(seqs),
    timeoutMs,
    `feed to show seqs ${seqs[0]}..${seqs.at(-1)}`,
  );
}

beforeAll(async () => {
  browser = await launchBrowser();
  service = await startService({ dbPath: dir.file("zoe.db"), env: { ZOE_API_TOKEN: TOKEN } });
  page = await browser.newPage();
  // Log every badge change with the page's wall clock.
  await page.addInitScript(() => {
    const w = window as unknown as { __badge: { status: string; at: number }[] };
    w.__badge = [];
    let last: string | null = null;
    const look = () => {
      const status = document.querySelector("[data-testid=badge]")?.getAttribute("data-status") ?? null;
      if (status !== null && status !== last) w.__badge.push({ status, at: Date.now() });
      last = status;
    };
    new MutationObserver(look).observe(document, {
      subtree: true,
      childList: true,
      attributes: true,
      attributeFilter: ["data-status"],
    });
  });
}, 60_000);

afterAll(async () => {
  if (stopped) thaw();
  await browser?.close();
  await service?.kill();
  dir.cleanup();
});

describe("a hung local link in Chromium", () => {
  let seqs: number[] = [];

  test("opens LOCAL LIVE with the events the bot posts", async () => {
    await page.goto(`${service.url}/?mode=paper#token=${TOKEN}`);
    await page.waitForSelector("[data-testid=badge][data-status=local]", { timeout: 10_000 });
    seqs = await post(3);
    await feedShows(seqs);
  }, 30_000);

  test(`a freeze of ${BLIP_MS} ms does not flap the badge`, async () => {
    const since = Date.now();
    freeze();
    await Bun.sleep(BLIP_MS); // the fault's length, not a wait for something to happen
    thaw();
    seqs.push(...(await post(2)));
    await feedShows(seqs);
    // Watch long enough for a wrongly short timeout to have fired.
    await Bun.sleep(WATCH_AFTER_BLIP_MS);
    expect(await changesSince(since)).toEqual([]);
    expect(await page.getAttribute("[data-testid=badge]", "data-status")).toBe("local");
  }, 30_000);

  // No Supabase is configured here, so the page away from the local API says OFFLINE (REMOTE needs a fallback).
  const AWAY = "offline";
  const toRemote: number[] = [];
  const toLocal: number[] = [];
  for (let round = 1; round <= HANG_ROUNDS; round++) {
    test(`round ${round}: SIGSTOP → OFFLINE within 5 s; SIGCONT → LOCAL LIVE again, every event once`, async () => {
      const frozenAt = Date.now();
      freeze();
      await page.waitForSelector(`[data-testid=badge][data-status=${AWAY}]`, { timeout: 5_000 });
      const remote = (await changesSince(frozenAt)).find((c) => c.status === AWAY)!;
      toRemote.push(remote.at - frozenAt);
      expect(remote.at - frozenAt).toBeLessThan(5_000);
      // Stay hung a while: the page keeps probing (each probe times out) and stays away.
      await Bun.sleep(3_000);
      expect(await page.getAttribute("[data-testid=badge]", "data-status")).toBe(AWAY);
      const thawedAt = Date.now();
      thaw();
      await page.waitForSelector("[data-testid=badge][data-status=local]", { timeout: 20_000 });
      const local = (await changesSince(thawedAt)).find((c) => c.status === "local")!;
      toLocal.push(local.at - thawedAt);
      seqs.push(...(await post(2)));
      await feedShows(seqs);
      const shown = await rowSeqs();
      expect(new Set(shown).size).toBe(shown.length);
    }, 60_000);
  }

  test("prints the measured switch times", () => {
    const fmt = (xs: number[]) =>
      `${xs.map((x) => Math.round(x)).join(", ")} ms (median ${Math.round([...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!)})`;
    console.log(`hung link: OFFLINE after SIGSTOP in ${fmt(toRemote)}; LOCAL LIVE after SIGCONT in ${fmt(toLocal)}`);
    expect(toRemote).toHaveLength(HANG_ROUNDS);
    expect(
      browser
        .errors()
        .filter(
          (e) =>
            !/ERR_INCOMPLETE_CHUNKED_ENCODING|ERR_CONNECTION_REFUSED|ERR_EMPTY_RESPONSE|ERR_ABORTED|Failed to fetch|signal is aborted/i.test(
              e,
            ),
        ),
    ).toEqual([]);
  });
});
