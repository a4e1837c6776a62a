// End to end: the real service (src/main.ts as a child process) flushing over
// loopback to the local Supabase-compatible stack (real Postgres, the real
// zoe-ingest function under Deno, the PostgREST-subset gateway).
import { afterAll, afterEach, beforeAll, describe, expect, test } from "bun:test";
import { openStore } from "../../src/store/store.ts";
import { createEdgeFunctionSink } from "../../src/flush/sinks/edge-function.ts";
import { systemClock } from "../../src/lib/clock.ts";
import { type ServiceProcess, startService } from "../helpers/service.ts";
import { refusePoisonRows, startSupabaseStack, type SupabaseStack } from "../helpers/supabase-stack.ts";
import { tempDir, waitFor } from "../helpers/tmp.ts";

let stack: SupabaseStack;
const cleanups: (() => unknown)[] = [];

beforeAll(async () => {
  stack = await startSupabaseStack();
  await refusePoisonRows(stack);
}, 60_000);

afterAll(async () => {
  await stack?.stop();
});

afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

type SinkName = "edge" | "direct";

/** Only what the test triggers flushes: intervals of an hour, no market clock. */
function flushEnv(sink: SinkName, url = stack.url, extra: Record<string, string> = {}): Record<string, string> {
  return {
    SUPABASE_URL: url,
    SUPABASE_SERVICE_ROLE_KEY: stack.serviceKey,
    ZOE_FLUSH_SINK: sink,
    ZOE_FLUSH_MARKET_HOURS: "false",
    ZOE_FLUSH_ACTIVE_MS: "3600000",
    ZOE_FLUSH_OFFHOURS_MS: "3600000",
    ZOE_FLUSH_BACKOFF_MIN_MS: "50",
    ZOE_FLUSH_BACKOFF_MAX_MS: "400",
    ZOE_FLUSH_TIMEOUT_MS: "2000",
    ZOE_FLUSH_STALL_MS: "3700000",
    ...extra,
  };
}

async function service(env: Record<string, string>, dbPath?: string): Promise<ServiceProcess & { dbPath: string }> {
  let path = dbPath;
  if (!path) {
    const dir = tempDir("zoe-e2e-");
    cleanups.push(() => dir.cleanup());
    path = dir.file("zoe.db");
  }
  const svc = await startService({ dbPath: path, env });
  cleanups.push(() => (svc.proc.exitCode === null && svc.proc.signalCode === null ? svc.kill("SIGKILL") : undefined));
  return Object.assign(svc, { dbPath: path });
}

let tag = 0;
const nextSource = () => `e2e-${process.pid}-${++tag}`;

async function post(svc: ServiceProcess, events: Record<string, unknown>[]) {
  const res = await fetch(`${svc.url}/local/events`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(events),
  });
  if (res.status !== 201) throw new Error(`POST /local/events: ${res.status} ${await res.text()}`);
  return ((await res.json()) as { events: { id: string; seq: number }[] }).events;
}

const event = (source: string, i: number, extra: Record<string, unknown> = {}) => ({
  mode: "live",
  source,
  type: "ORDER",
  subtype: "TICK",
  body: `event ${i}`,
  ...extra,
});

async function remoteRows(source: string): Promise<{ id: string; seq: number; body: string }[]> {
  // seq as text: a start's seqs are past int4 (docs/flushing.md, "Seq ranges").
  return (
    (await stack.sql`select id::text, seq::text as seq, body from zoe_events where source = ${source} order by zoe_events.seq`) as {
      id: string;
      seq: string;
      body: string;
    }[]
  ).map((r) => ({ ...r, seq: Number(r.seq) }));
}

async function health(svc: ServiceProcess): Promise<Record<string, unknown>> {
  const body = (await (await fetch(`${svc.url}/health`)).json()) as { modes: { live: Record<string, unknown> } };
  return body.modes.live;
}

/** Stands between the service and the stack and misbehaves on request. */
type Fault = "forward" | "500" | "hang" | "garbage" | "commit-then-hang";
function faultyProxy(plan: (call: number) => Fault) {
  let calls = 0;
  const server = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    idleTimeout: 0,
    async fetch(req) {
      // The start-up read of the remote's highest seqs (a GET) goes through
      // untouched: the plan is for the flush's sends.
      const fault = req.method === "GET" ? "forward" : plan(++calls);
      if (fault === "500") return Response.json({ error: { code: "internal", message: "boom" } }, { status: 500 });
      if (fault === "garbage") return new Response("<html>502 from some proxy</html>", { status: 200 });
      if (fault === "hang") return new Promise<Response>(() => {});
      const url = new URL(req.url);
      const upstream = await fetch(`${stack.url}${url.pathname}${url.search}`, {
        method: req.method,
        headers: req.headers,
        body: req.method === "GET" ? undefined : await req.arrayBuffer(),
      });
      const body = await upstream.arrayBuffer();
      // The remote committed; its answer never reaches the service.
      if (fault === "commit-then-hang") return new Promise<Response>(() => {});
      return new Response(body, { status: upstream.status, headers: upstream.headers });
    },
  });
  cleanups.push(() => server.stop(true));
  return { url: `http://127.0.0.1:${server.port}`, calls: () => calls };
}

describe.each(["edge", "direct"] as const)("flush through the %s sink", (sink) => {
  test("seed 1: an event written, the service SIGKILLed before any flush, restarted → it reaches Postgres exactly once", async () => {
    const source = nextSource();
    const svc = await service(flushEnv(sink));
    const [stored] = await post(svc, [event(source, 1)]);
    await svc.kill("SIGKILL");
    expect(await remoteRows(source)).toEqual([]);
    const again = await service(flushEnv(sink), svc.dbPath);
    const rows = await waitFor(
      async () => ((await remoteRows(source)).length === 1 ? remoteRows(source) : null),
      10_000,
      "the event in Postgres",
    );
    expect(rows).toEqual([{ id: stored!.id, seq: stored!.seq, body: "event 1" }]);
    await waitFor(async () => (await health(again)).backlog === 0, 5_000, "an empty local backlog");
    await again.kill("SIGTERM");
    expect(await remoteRows(source)).toHaveLength(1);
  }, 30_000);

  test("seed 5: a BUY_FILLED is visible in Postgres within 2 s (intervals are an hour)", async () => {
    const source = nextSource();
    const svc = await service(flushEnv(sink));
    const started = performance.now();
    await post(svc, [event(source, 1, { subtype: "BUY_FILLED", symbol: "AAPL" })]);
    // A tight poll (not waitFor's 20 ms) so the printed figure is close to the real one.
    while (
      (await stack.sql`select 1 from zoe_events where source = ${source}`).length === 0 &&
      performance.now() - started < 2_000
    )
      await Bun.sleep(1);
    const ms = performance.now() - started;
    console.log(`critical event visible in Postgres after ${ms.toFixed(1)} ms (${sink} sink)`);
    expect(ms).toBeLessThan(2_000);
  }, 20_000);

  test("a poison event is quarantined, the rest flows, and it is retried after the fix", async () => {
    const source = nextSource();
    const svc = await service(flushEnv(sink));
    await post(svc, [
      event(source, 1),
      event(source, 2, { body: "poison" }),
      event(source, 3),
      event(source, 4, { subtype: "KILL_SWITCH" }),
    ]);
    await waitFor(async () => (await remoteRows(source)).length === 3, 10_000, "the three good events");
    expect((await remoteRows(source)).map((r) => r.body)).toEqual(["event 1", "event 3", "event 4"]);
    // Rows are visible remotely a moment before the flusher marks them locally.
    await waitFor(
      async () => {
        const h = await health(svc);
        return h.backlog === 0 && h.quarantined === 1 && h.flusher !== "flushing" ? h : null;
      },
      5_000,
      "the local marks and the quarantine",
    );
    const listed = (await (await fetch(`${svc.url}/local/quarantine?mode=live`)).json()) as {
      count: number;
      events: { event: { body: string }; reason: string }[];
    };
    expect(listed.count).toBe(1);
    expect(listed.events[0]!.event.body).toBe("poison");
    expect(listed.events[0]!.reason).toContain("poison row refused");
    expect(await health(svc)).toMatchObject({ quarantined: 1, backlog: 0 });

    // The fix: let the row through, then retry the quarantine.
    await stack.sql.unsafe("alter table public.zoe_events disable trigger refuse_poison");
    try {
      const res = await fetch(`${svc.url}/local/quarantine/retry`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ mode: "live" }),
      });
      expect(await res.json()).toEqual({ mode: "live", released: 1, quarantined: 0 });
      await waitFor(async () => (await remoteRows(source)).length === 4, 10_000, "the retried event");
      expect((await remoteRows(source)).map((r) => r.body)).toEqual(["event 1", "poison", "event 3", "event 4"]);
    } finally {
      await stack.sql.unsafe("alter table public.zoe_events enable trigger refuse_poison");
    }
  }, 30_000);

  test("a state snapshot reaches zoe_state on its own within one flush interval, with no event pending", async () => {
    const intervalMs = 1_500;
    const svc = await service(
      flushEnv(sink, stack.url, { ZOE_FLUSH_ACTIVE_MS: String(intervalMs), ZOE_FLUSH_OFFHOURS_MS: String(intervalMs) }),
    );
    const mode = sink === "edge" ? "paper" : "live"; // the two sinks' runs must not read each other's row
    // The cadence itself is tested on a fake clock (flusher.test.ts); here: it arrives with no event to carry it.
    for (const cash of [1234.5, 1300]) {
      const res = await fetch(`${svc.url}/local/state`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ mode, cash, positions: { AAPL: 10 } }),
      });
      expect(res.status).toBe(201);
      const row = await waitFor(
        async () => {
          const [r] = await stack.sql`select state from zoe_state where mode = ${mode}`;
          return (r?.state as { cash?: number } | undefined)?.cash === cash ? r : null;
        },
        intervalMs + 3_000,
        "the snapshot in zoe_state",
      );
      expect(row.state).toEqual({ cash, positions: { AAPL: 10 } });
    }
    expect(await health(svc)).toMatchObject({ backlog: 0, consecutive_failures: 0 });
  }, 30_000);

  test("an event whose key Supabase holds for a different event is quarantined as idempotency_conflict, never counted as delivered", async () => {
    const source = nextSource();
    // Another box (or this one before a restore) already stored an event under the key.
    const key = `fill-${source}`;
    const remoteId = Bun.randomUUIDv7();
    // (mode, seq) is unique: each run's other-box row has a seq of its own.
    const otherSeq = 7 + tag;
    await stack.sql`insert into zoe_events (id, mode, ts, seq, source, type, subtype, symbol, severity, body, meta, idempotency_key)
      values (${remoteId}, 'live', now(), ${otherSeq}, ${source}, 'ORDER', 'TICK', null, 'info', 'the other fill', '{}'::jsonb, ${key})`;
    const svc = await service(flushEnv(sink));
    const [first] = await post(svc, [
      event(source, 1),
      event(source, 2, { idempotency_key: key }),
      event(source, 3, { subtype: "KILL_SWITCH" }),
    ]);
    const h = await waitFor(
      async () => {
        const h = await health(svc);
        return h.backlog === 0 && h.quarantined === 1 && h.flusher !== "flushing" ? h : null;
      },
      10_000,
      "the flush and the quarantine",
    );
    expect(h).toMatchObject({ backlog: 0, quarantined: 1 });
    // By seq: the other box's event stands unchanged; local 1 and 3 arrived (this
    // start's range is above it), local 2 did not.
    expect((await remoteRows(source)).map((r) => [r.seq, r.id === remoteId, r.body])).toEqual([
      [otherSeq, true, "the other fill"],
      [first!.seq, false, "event 1"],
      [first!.seq + 2, false, "event 3"],
    ]);
    const listed = (await (await fetch(`${svc.url}/local/quarantine?mode=live`)).json()) as {
      count: number;
      events: { event: { body: string }; reason: string }[];
    };
    expect(listed.count).toBe(1);
    expect(listed.events[0]!.event.body).toBe("event 2");
    expect(listed.events[0]!.reason).toStartWith(
      `idempotency_conflict: in Supabase, idempotency_key "${key}" is already used by event ${remoteId} (mode live, seq ${otherSeq}), which differs in body`,
    );
    // Not marked flushed: it stays in local_events, set aside (flushed = 2), until an operator decides.
    await svc.kill("SIGKILL");
    const db = openStore({ path: svc.dbPath });
    try {
      const row = db.db.query("SELECT flushed FROM local_events WHERE idempotency_key = ?").get(key) as {
        flushed: number;
      };
      expect(row.flushed).toBe(2);
    } finally {
      db.close();
    }
  }, 30_000);
});

describe("flush through the edge sink", () => {
  test("SIGTERM makes one last flush before exit", async () => {
    const source = nextSource();
    const svc = await service(flushEnv("edge"));
    await post(
      svc,
      Array.from({ length: 30 }, (_, i) => event(source, i + 1)),
    );
    expect(await remoteRows(source)).toEqual([]);
    expect(await svc.kill("SIGTERM")).toBe(0);
    expect((await remoteRows(source)).map((r) => r.seq)).toHaveLength(30);
  }, 30_000);

  test("remote down for a while: backoff, then it recovers and drains; nothing lost, nothing doubled", async () => {
    const source = nextSource();
    const svc = await service(flushEnv("edge"));
    await stack.stopFunction();
    try {
      await post(
        svc,
        Array.from({ length: 40 }, (_, i) => event(source, i + 1)),
      );
      await post(svc, [event(source, 41, { subtype: "SELL_FILLED" })]);
      const h = await waitFor(
        async () => {
          const h = await health(svc);
          return (h.consecutive_failures as number) >= 3 && h.flusher === "backoff" ? h : null;
        },
        10_000,
        "failed attempts",
      );
      expect(h).toMatchObject({ backlog: 41, last_flush_status: "error", remote: "edge" });
      expect(Date.parse(h.next_attempt_at as string) - Date.now()).toBeLessThanOrEqual(400);
      expect(await remoteRows(source)).toEqual([]);
    } finally {
      await stack.restartFunction();
    }
    await waitFor(async () => (await remoteRows(source)).length === 41, 10_000, "the drained backlog");
    await waitFor(async () => (await health(svc)).backlog === 0, 5_000, "an empty local backlog");
    expect(await health(svc)).toMatchObject({ consecutive_failures: 0, last_flush_status: "ok" });
    const rows = await remoteRows(source);
    // Gapless from the first seq of this start's range.
    expect(rows.map((r) => r.seq)).toEqual(Array.from({ length: 41 }, (_, i) => rows[0]!.seq + i));
  }, 40_000);

  test("500, a timeout, garbage and a lost response are retried; every event lands once", async () => {
    const faults: Fault[] = ["500", "hang", "garbage", "commit-then-hang"];
    const proxy = faultyProxy((n) => faults[n - 1] ?? "forward");
    const source = nextSource();
    const svc = await service(flushEnv("edge", proxy.url, { ZOE_FLUSH_TIMEOUT_MS: "300" }));
    await post(svc, [event(source, 1), event(source, 2), event(source, 3, { subtype: "PNL_REALIZED" })]);
    await waitFor(async () => (await health(svc)).backlog === 0, 15_000, "an empty local backlog");
    expect(proxy.calls()).toBeGreaterThanOrEqual(5);
    const landed = (await remoteRows(source)).map((r) => r.seq);
    expect(landed).toEqual([landed[0]!, landed[0]! + 1, landed[0]! + 2]);
    const log = openStoreReadOnly(svc.dbPath);
    expect(log.map((r) => r.status)).toEqual(["error", "error", "error", "error", "ok"]);
  }, 30_000);

  test("seed 2 and 3: retried and out-of-order batches leave no duplicates, and ORDER BY seq is the local order", async () => {
    const source = nextSource();
    // Every other request fails after the remote committed: each batch is sent twice.
    const proxy = faultyProxy((n) => (n % 2 === 1 ? "commit-then-hang" : "forward"));
    const svc = await service(flushEnv("edge", proxy.url, { ZOE_FLUSH_BATCH_SIZE: "7", ZOE_FLUSH_TIMEOUT_MS: "300" }));
    // Concurrent posts: arrival order at the service decides the seqs.
    await Promise.all(
      Array.from({ length: 6 }, (_, k) =>
        post(
          svc,
          Array.from({ length: 5 }, (_, i) => event(source, k * 5 + i + 1)),
        ),
      ),
    );
    await post(svc, [event(source, 31, { subtype: "BUY_FILLED" })]);
    await waitFor(async () => (await health(svc)).backlog === 0, 20_000, "an empty local backlog");
    const local = (await (await fetch(`${svc.url}/local/events?mode=live&since_seq=0&limit=1000`)).json()) as {
      id: string;
      source: string;
    }[];
    const mine = local.filter((e) => e.source === source).map((e) => e.id);
    expect(mine).toHaveLength(31);
    expect((await remoteRows(source)).map((r) => r.id)).toEqual(mine);

    // The same events again, in shuffled batches, straight through the sink: still one row each, same order.
    const sink = createEdgeFunctionSink({
      url: stack.url,
      serviceKey: stack.serviceKey,
      timeoutMs: 5_000,
      clock: systemClock,
    });
    await svc.kill("SIGTERM");
    const store = openStore({ path: svc.dbPath });
    try {
      const all = store.list("live", { sinceSeq: 0, limit: 1000 }).filter((e) => e.source === source);
      const batches = [all.slice(20), all.slice(0, 10), all.slice(10, 20), all.slice(5, 15)];
      for (const events of batches) {
        const { results } = await sink.send({
          mode: "live",
          events,
          backlog: 0,
          state: null,
          signal: new AbortController().signal,
        });
        expect(results.every((r) => r.status === "duplicate")).toBe(true);
      }
    } finally {
      store.close();
    }
    expect((await remoteRows(source)).map((r) => r.id)).toEqual(mine);
  }, 40_000);

  test("without SUPABASE_URL the flusher is idle and health says no remote is configured", async () => {
    const svc = await service({});
    await waitFor(() => svc.output().includes('"remote":"no remote configured'), 5_000, "the startup line");
    expect(await health(svc)).toMatchObject({ remote: "no remote configured", remote_configured: false });
  }, 20_000);
});

function openStoreReadOnly(path: string): { status: string }[] {
  const { Database } = require("bun:sqlite") as typeof import("bun:sqlite");
  const db = new Database(path, { readonly: true });
  try {
    return db.query("SELECT status FROM local_flush_log WHERE mode = 'live' ORDER BY id").all() as { status: string }[];
  } finally {
    db.close();
  }
}
