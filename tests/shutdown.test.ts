// Graceful shutdown of the real service (src/main.ts as a child process): on
// SIGTERM it drains to the remote by default, and exits within a bound even
// when the remote is gone or hangs, leaving every event in the local database.
import { Database } from "bun:sqlite";
import { afterAll, afterEach, beforeAll, describe, expect, test } from "bun:test";
import { type ServiceProcess, startService } from "./helpers/service.ts";
import { startSupabaseStack, type SupabaseStack } from "./helpers/supabase-stack.ts";
import { tempDir } from "./helpers/tmp.ts";

let stack: SupabaseStack;
const cleanups: (() => unknown)[] = [];
beforeAll(async () => {
  stack = await startSupabaseStack();
}, 60_000);
afterAll(async () => {
  await stack?.stop();
});
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

const SHUTDOWN_MS = 3_000;
// src/main.ts: up to 5 s for open requests, then ZOE_FLUSH_SHUTDOWN_MS for the flush; 3 s of slack for a loaded machine.
const BOUND_MS = 5_000 + SHUTDOWN_MS + 3_000;

/** Flushes only when the test says so (or at SIGTERM): hour-long cadence, no critical trigger, big batches. */
function flushEnv(url: string, extra: Record<string, string> = {}): Record<string, string> {
  return {
    SUPABASE_URL: url,
    SUPABASE_SERVICE_ROLE_KEY: stack.serviceKey,
    ZOE_FLUSH_MARKET_HOURS: "false",
    ZOE_FLUSH_ACTIVE_MS: "3600000",
    ZOE_FLUSH_OFFHOURS_MS: "3600000",
    ZOE_FLUSH_STALL_MS: "3700000",
    ZOE_FLUSH_CRITICAL_IMMEDIATE: "false",
    ZOE_FLUSH_BATCH_SIZE: "1000",
    ZOE_FLUSH_BACKOFF_MIN_MS: "50",
    ZOE_FLUSH_BACKOFF_MAX_MS: "200",
    ZOE_FLUSH_SHUTDOWN_MS: String(SHUTDOWN_MS),
    ZOE_LOG_LEVEL: "info",
    ...extra,
  };
}

async function service(env: Record<string, string>): Promise<ServiceProcess & { dbPath: string }> {
  const dir = tempDir("zoe-shutdown-");
  cleanups.push(() => dir.cleanup());
  const svc = await startService({ dbPath: dir.file("zoe.db"), env });
  cleanups.push(() => (svc.proc.exitCode === null && svc.proc.signalCode === null ? svc.kill("SIGKILL") : undefined));
  return Object.assign(svc, { dbPath: dir.file("zoe.db") });
}

let tag = 0;
async function postMany(svc: ServiceProcess, mode: "live" | "paper", n: number, source: string): Promise<number> {
  let acked = 0;
  for (let i = 0; i < n; i += 200) {
    const events = Array.from({ length: Math.min(200, n - i) }, (_, k) => ({
      mode,
      source,
      type: "T",
      subtype: "TICK",
      body: `event ${i + k}`,
    }));
    const res = await fetch(`${svc.url}/local/events`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(events),
    });
    if (res.status !== 201) throw new Error(`POST: ${res.status} ${await res.text()}`);
    acked += events.length;
  }
  return acked;
}

/** SIGTERM; resolves with the exit code and how long the exit took. */
async function terminate(svc: ServiceProcess): Promise<{ code: number | null; ms: number }> {
  const t0 = performance.now();
  const code = await svc.kill("SIGTERM");
  return { code, ms: performance.now() - t0 };
}

function localCounts(path: string) {
  const db = new Database(path, { readonly: true });
  try {
    const count = (where: string) =>
      (db.query(`SELECT COUNT(*) AS n FROM local_events WHERE ${where}`).get() as { n: number }).n;
    return {
      total: count("1"),
      unflushed: count("flushed = 0"),
      integrity: (db.query("PRAGMA integrity_check").get() as { integrity_check: string }).integrity_check,
    };
  } finally {
    db.close();
  }
}

function logLine(svc: ServiceProcess, msg: string): Record<string, unknown> | undefined {
  for (const line of svc.output().split("\n")) {
    if (!line.startsWith("{")) continue;
    const entry = JSON.parse(line) as Record<string, unknown>;
    if (entry.msg === msg) return entry;
  }
  return undefined;
}

describe("SIGTERM", () => {
  test("with a backlog in both modes and a reachable remote: everything is flushed before exit, within the bound", async () => {
    const source = `shutdown-${process.pid}-${++tag}`;
    const svc = await service(flushEnv(stack.url));
    const acked = (await postMany(svc, "live", 900, source)) + (await postMany(svc, "paper", 400, source));
    const before = (await stack.sql`select count(*)::int as n from zoe_events where source = ${source}`) as {
      n: number;
    }[];
    expect(before[0]!.n).toBe(0); // nothing flushed yet: the backlog rides on the shutdown

    const { code, ms } = await terminate(svc);
    expect(code).toBe(0);
    expect(ms).toBeLessThan(BOUND_MS);
    const rows =
      (await stack.sql`select mode, count(*)::int as n, count(distinct seq)::int as seqs from zoe_events where source = ${source} group by mode order by mode`) as {
        mode: string;
        n: number;
        seqs: number;
      }[];
    expect(rows).toEqual([
      { mode: "live", n: 900, seqs: 900 },
      { mode: "paper", n: 400, seqs: 400 },
    ]);
    expect(acked).toBe(1300);
    expect(localCounts(svc.dbPath)).toEqual({ total: 1300, unflushed: 0, integrity: "ok" });
    expect(logLine(svc, "flusher stopped")).toMatchObject({ unflushed_left: 0 });
    expect(logLine(svc, "stopped")).toBeDefined();
  }, 60_000);

  test("with the remote unreachable (connection refused): exits within the bound, every event kept locally, unflushed", async () => {
    const closed = Bun.serve({ hostname: "127.0.0.1", port: 0, fetch: () => new Response("") });
    const port = closed.port;
    closed.stop(true);
    const svc = await service(flushEnv(`http://127.0.0.1:${port}`));
    await postMany(svc, "live", 500, `refused-${++tag}`);
    const { code, ms } = await terminate(svc);
    expect(code).toBe(0);
    expect(ms).toBeLessThan(BOUND_MS);
    expect(localCounts(svc.dbPath)).toEqual({ total: 500, unflushed: 500, integrity: "ok" });
    expect(logLine(svc, "flusher stopped")).toMatchObject({ unflushed_left: 500 });
  }, 60_000);

  test("with a remote that accepts and never answers (a send in flight, its timeout a minute away): exits within the bound, nothing lost", async () => {
    let received = 0;
    const blackHole = Bun.serve({
      hostname: "127.0.0.1",
      port: 0,
      idleTimeout: 0,
      fetch: () => {
        received++;
        return new Promise<Response>(() => {});
      },
    });
    cleanups.push(() => blackHole.stop(true));
    // A critical event starts a send at once; it hangs in flight when SIGTERM comes.
    const svc = await service(
      flushEnv(blackHole.url.origin, { ZOE_FLUSH_TIMEOUT_MS: "60000", ZOE_FLUSH_CRITICAL_IMMEDIATE: "true" }),
    );
    await postMany(svc, "live", 300, `hang-${++tag}`);
    const res = await fetch(`${svc.url}/local/events`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ mode: "live", source: "bot", type: "ORDER", subtype: "BUY_FILLED", body: "fill" }),
    });
    expect(res.status).toBe(201);
    const deadline = performance.now() + 10_000;
    while (received === 0 && performance.now() < deadline) await Bun.sleep(20);
    expect(received).toBeGreaterThan(0);

    const { code, ms } = await terminate(svc);
    expect(code).toBe(0);
    expect(ms).toBeLessThan(BOUND_MS);
    expect(localCounts(svc.dbPath)).toEqual({ total: 301, unflushed: 301, integrity: "ok" });
  }, 60_000);
});
