// Several batches of a mode in flight at once (ZOE_FLUSH_WINDOW) under
// faults: an earlier batch refused while later ones are already inside the
// remote, an earlier batch committed but reported failed, the service killed
// with a full window out, and every batch of a window delivered twice. The
// real service, the fault proxy, the real Edge Function and Postgres. Besides
// the invariant (every acknowledged event once, gapless), a watcher reads
// Postgres every few ms throughout: a mode's rows must only ever appear as a
// prefix of its seqs, never with a gap that a later batch jumped.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { Ledger, seededRandom, startBot } from "../helpers/bot.ts";
import { type FaultAction, type FaultProxy, type ProxiedRequest, startFaultProxy } from "../helpers/fault-proxy.ts";
import { checkInvariant, waitForDrain } from "../helpers/invariant.ts";
import { type ServiceProcess, startService } from "../helpers/service.ts";
import { startSupabaseStack, type SupabaseStack } from "../helpers/supabase-stack.ts";
import { tempDir, waitFor } from "../helpers/tmp.ts";

const BATCH = 20;
const WINDOW = 3;
/** At least this many events queued before the drain (the bot may add a few more). */
const BACKLOG = 12 * BATCH;

let stack: SupabaseStack;
const cleanups: (() => unknown)[] = [];

beforeAll(async () => {
  stack = await startSupabaseStack({ functionEnv: { ZOE_INGEST_ORDER_WAIT_MS: "2000" } });
}, 60_000);

afterAll(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
  await stack?.stop();
});

function flushEnv(url: string): Record<string, string> {
  return {
    SUPABASE_URL: url,
    SUPABASE_SERVICE_ROLE_KEY: stack.serviceKey,
    ZOE_FLUSH_MARKET_HOURS: "false",
    ZOE_FLUSH_ACTIVE_MS: "100",
    ZOE_FLUSH_OFFHOURS_MS: "100",
    ZOE_FLUSH_BATCH_SIZE: String(BATCH),
    ZOE_FLUSH_WINDOW: String(WINDOW),
    ZOE_FLUSH_BACKOFF_MIN_MS: "50",
    ZOE_FLUSH_BACKOFF_MAX_MS: "200",
    ZOE_FLUSH_TIMEOUT_MS: "5000",
    ZOE_LOG_LEVEL: "error",
  };
}

/** A flush request as the proxy sees it. */
function batchOf(req: ProxiedRequest): { first: number; last: number; afterKey: string | null } {
  const body = JSON.parse(new TextDecoder().decode(req.body)) as { events: { seq: number }[]; after_key?: string };
  return { first: body.events[0]!.seq, last: body.events.at(-1)!.seq, afterKey: body.after_key ?? null };
}

interface Watch {
  /** Most flush requests inside the proxy at once. */
  maxInFlight: number;
  samples: number;
  /** Reads that saw a mode's rows with a gap below the highest seq. */
  gaps: string[];
  stop(): Promise<void>;
}

/** Reads Postgres and the proxy every ~3 ms until stopped. */
function watch(proxy: FaultProxy, source: string): Watch {
  let running = true;
  const w: Watch = { maxInFlight: 0, samples: 0, gaps: [], stop: async () => {} };
  const loop = (async () => {
    while (running) {
      w.maxInFlight = Math.max(w.maxInFlight, proxy.inFlight());
      // One start of the store, one seq range: gapless means as many rows as seqs from the first to the highest.
      const rows =
        await stack.sql`select mode, count(*)::int as n, (max(seq) - min(seq) + 1)::int as span, max(seq)::text as top from zoe_events where source = ${source} group by mode`;
      w.samples++;
      for (const r of rows as { mode: string; n: number; span: number; top: string }[])
        if (r.n !== r.span) w.gaps.push(`${r.mode}: ${r.n} rows up to seq ${r.top}, ${r.span} seqs`);
      await Bun.sleep(3);
    }
  })();
  w.stop = async () => {
    running = false;
    await loop;
  };
  return w;
}

/**
 * A backlog of at least BACKLOG events of one mode, left by a run without a
 * remote; then the service again, with the remote behind the fault proxy:
 * `scenario` decides each flush request, the first window included. Returns
 * once Postgres holds the drain and the service is stopped.
 */
async function run(
  name: string,
  scenario: (req: ProxiedRequest, n: number) => FaultAction | Promise<FaultAction>,
  during?: (ctx: { svc: ServiceProcess; proxy: FaultProxy; dbPath: string; source: string }) => Promise<ServiceProcess>,
) {
  const dir = tempDir("zoe-pipeline-");
  const dbPath = dir.file("zoe.db");
  let svc = await startService({ dbPath, env: { ZOE_LOG_LEVEL: "error" } });
  cleanups.push(async () => {
    if (svc.proc.exitCode === null && svc.proc.signalCode === null) await svc.kill("SIGKILL");
    dir.cleanup();
  });
  const ledger = new Ledger(`pipeline-${name}-${process.pid}`);
  const bot = startBot({
    url: () => svc.url,
    ledger,
    random: seededRandom(7),
    workers: 2,
    maxBatch: BATCH,
    singleShare: 0,
    criticalShare: 0,
    replayShare: 0,
    modes: ["live"],
  });
  await waitFor(() => ledger.acked().size >= BACKLOG, 20_000, `${BACKLOG} acknowledged events`);
  bot.stopProducing();
  await bot.settled();
  expect(await svc.kill("SIGTERM")).toBe(0);
  let n = 0;
  // The start-up read of the remote's highest seqs (a GET) goes through: the scenarios script the flush's POSTs.
  const proxy = startFaultProxy({
    upstream: stack.url,
    plan: (req) => (req.method === "GET" ? { kind: "forward" } : scenario(req, ++n)),
  });
  cleanups.push(() => proxy.stop());
  const w = watch(proxy, ledger.source);
  try {
    svc = await startService({ dbPath, env: flushEnv(proxy.url) });
    if (during) svc = await during({ svc, proxy, dbPath, source: ledger.source });
    await waitForDrain(svc.url, 30_000);
  } finally {
    await w.stop();
  }
  const health = (await (await fetch(`${svc.url}/health`)).json()) as {
    modes: Record<string, Record<string, unknown>>;
  };
  const metrics = await (await fetch(`${svc.url}/metrics`)).text();
  expect(await svc.kill("SIGTERM")).toBe(0);
  const report = await checkInvariant({ ledger, dbPath, sql: stack.sql });
  const { Database } = await import("bun:sqlite");
  const db = new Database(dbPath, { readonly: true });
  const log = db.query("SELECT status, last_seq FROM local_flush_log WHERE mode = 'live' ORDER BY id").all() as {
    status: string;
    last_seq: number;
  }[];
  const { maxSeq } = db.query("SELECT MAX(seq) AS maxSeq FROM local_events WHERE mode = 'live'").get() as {
    maxSeq: number;
  };
  db.close();
  return { ledger, report, watch: w, health: health.modes.live!, metrics, log, proxy, maxSeq };
}

const duplicatesIn = (metrics: string) =>
  Number(/zoe_flush_events_total\{mode="live",verdict="duplicate"\} (\d+)/.exec(metrics)?.[1] ?? 0);

describe(`a window of ${WINDOW} batches in flight`, () => {
  test("an earlier batch refused while later ones wait inside the remote: no gap is ever visible, every event lands once, the log reads in seq order", async () => {
    const seen: { first: number; afterKey: string | null }[] = [];
    const r = await run("refused", (req, n) => {
      seen.push(batchOf(req));
      // The second request of the drain never reaches the remote.
      return n === 2 ? { kind: "status", status: 503 } : { kind: "forward" };
    });
    expect(r.watch.gaps).toEqual([]);
    expect(r.watch.maxInFlight).toBeGreaterThanOrEqual(2);
    // Later batches named the event they must commit after.
    expect(seen.some((b) => b.afterKey !== null)).toBe(true);
    const ok = r.log.filter((e) => e.status === "ok").map((e) => e.last_seq);
    expect(r.log.some((e) => e.status === "error")).toBe(true);
    expect(ok).toEqual([...ok].sort((a, b) => a - b));
    expect(ok.at(-1)).toBe(r.maxSeq);
    expect(r.health).toMatchObject({
      backlog: 0,
      flushed_through_seq: r.maxSeq,
      in_flight_batches: 0,
      window: WINDOW,
      consecutive_failures: 0,
    });
  }, 90_000);

  test("an earlier batch commits but is reported failed while a later one succeeds: the later one's marks stand, the retry is answered duplicate", async () => {
    const r = await run("lost-answer", (_req, n) =>
      n === 2 ? { kind: "commit-then-status", status: 500 } : { kind: "forward" },
    );
    expect(r.watch.gaps).toEqual([]);
    expect(r.watch.maxInFlight).toBeGreaterThanOrEqual(2);
    expect(duplicatesIn(r.metrics)).toBeGreaterThanOrEqual(BATCH);
    expect(r.report.remote).toBe(r.report.local);
    expect(r.health).toMatchObject({ backlog: 0, flushed_through_seq: r.maxSeq, in_flight_batches: 0 });
  }, 90_000);

  test("every batch of the first window committed but its answer lost: each is sent again and stored once", async () => {
    const r = await run("duplicate-window", (_req, n) =>
      n <= WINDOW ? { kind: "commit-then-drop" } : { kind: "forward" },
    );
    expect(r.watch.gaps).toEqual([]);
    expect(duplicatesIn(r.metrics)).toBeGreaterThanOrEqual(WINDOW * BATCH);
  }, 90_000);

  test("the service killed with a window out (one batch committed, two held before the remote): after a restart every event lands once, in seq order", async () => {
    let release!: () => void;
    const released = new Promise<void>((r) => (release = r));
    let held = 0;
    const r = await run(
      "crash",
      async (_req, n) => {
        if (n === 1) return { kind: "commit-then-stall" };
        if (n <= WINDOW) {
          held++;
          await released;
        }
        return { kind: "forward" };
      },
      async ({ svc, proxy, dbPath, source }) => {
        await waitFor(
          async () =>
            held === WINDOW - 1 &&
            (await stack.sql`select count(*)::int as n from zoe_events where source = ${source}`)[0].n === BATCH,
          20_000,
          "the first batch committed and the next two held",
        );
        expect(await svc.kill("SIGKILL")).not.toBe(0);
        // The held requests still reach the remote, after their sender died.
        release();
        const restarted = await startService({ dbPath, env: flushEnv(proxy.url) });
        cleanups.push(() => restarted.proc.exitCode === null && restarted.kill("SIGKILL"));
        return restarted;
      },
    );
    expect(r.watch.gaps).toEqual([]);
    // The restarted service sent the committed batch again.
    expect(duplicatesIn(r.metrics)).toBeGreaterThanOrEqual(BATCH);
  }, 90_000);
});
