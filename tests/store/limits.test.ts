import { Database } from "bun:sqlite";
import { afterEach, describe, expect, test } from "bun:test";
import { loadLimitsConfig } from "../../src/config.ts";
import { ConfigError } from "../../src/domain/errors.ts";
import { BacklogFullError, isCritical } from "../../src/store/limits.ts";
import { Quarantine } from "../../src/flush/quarantine.ts";
import { EVENT_BYTES_SQL, openStore } from "../../src/store/store.ts";
import { opsAppsClosedAfterEach } from "../helpers/ops.ts";
import { startService } from "../helpers/service.ts";
import { tempDir } from "../helpers/tmp.ts";

const cleanups: (() => void)[] = [];
afterEach(() => {
  for (const c of cleanups.splice(0).reverse()) c();
});

const setup = opsAppsClosedAfterEach();

const errorOf = async (res: Response) =>
  ((await res.json()) as { error: { code: string; message: string; details: Record<string, unknown> } }).error;

describe("backlog usage", () => {
  function truth(path: string) {
    const db = new Database(path, { readonly: true });
    try {
      return db
        .query(
          `SELECT mode, COUNT(*) AS events, COALESCE(SUM(${EVENT_BYTES_SQL}), 0) AS bytes FROM local_events WHERE flushed = 0 GROUP BY mode ORDER BY mode`,
        )
        .all() as {
        mode: string;
        events: number;
        bytes: number;
      }[];
    } finally {
      db.close();
    }
  }

  test("openStore() keeps the in-memory backlog equal to the table through append, duplicates, failed requests, flush, quarantine, release and reopen", async () => {
    const dir = tempDir();
    cleanups.push(() => dir.cleanup());
    const path = dir.file("zoe.db");
    let store = openStore({ path });
    const usage = () =>
      ["live", "paper"].map((m) => ({ mode: m, ...store.backlogUsage(m as "live") })).filter((u) => u.events > 0);
    const check = () => expect(usage()).toEqual(truth(path));

    // Multi-byte UTF-8 and a non-trivial meta: bytes, not characters, are counted.
    await store.append([
      { mode: "live", source: "s", type: "T", subtype: "X", body: "größe 😀", meta: { k: "värde", n: [1, 2, 3] } },
      { mode: "paper", source: "s", type: "T", subtype: "X", body: "b" },
    ]);
    await Promise.all([
      store.append([{ mode: "live", source: "s", type: "T", subtype: "X", body: "dup", idempotency_key: "k1" }]),
      store.append([{ mode: "live", source: "s", type: "T", subtype: "X", body: "dup", idempotency_key: "k1" }]),
      // Fails as a whole (id conflict on its second event): adds nothing.
      store
        .append([
          { mode: "live", source: "s", type: "T", subtype: "X", body: "x", id: "01900000-0000-7000-8000-000000000001" },
          {
            mode: "live",
            source: "s",
            type: "T",
            subtype: "X",
            body: "y",
            id: "01900000-0000-7000-8000-000000000001",
            idempotency_key: "other",
          },
        ])
        .catch(() => null),
    ]);
    check();
    expect(store.backlogUsage()).toEqual({ events: 3, bytes: truth(path).reduce((s, r) => s + r.bytes, 0) });

    const [first] = store.unflushed("live", 1);
    expect(store.markFlushed([first!.id, first!.id])).toBe(1);
    check();

    const quarantine = new Quarantine(store, { now: () => Date.now() });
    const [poison] = store.unflushed("live", 1);
    quarantine.add([{ event: poison!, reason: "test" }]);
    check();
    expect(store.backlogUsage("live").events).toBe(0);
    quarantine.release("live");
    check();
    expect(store.backlogUsage("live").events).toBe(1);

    store.close();
    store = openStore({ path });
    check();
    store.close();
  });
});

describe("bounded store", () => {
  test("ordinary events are refused with 503 backlog_full and Retry-After at the cap less the critical reserve; nothing of them is stored", async () => {
    const t = setup({ limits: { maxBacklogEvents: 10, criticalReserveEvents: 3 } });
    expect((await t.post([t.ev(), t.ev(), t.ev(), t.ev(), t.ev()])).status).toBe(201);
    expect((await t.post([t.ev(), t.ev()])).status).toBe(201);
    const refused = await t.post(t.ev({ body: "one too many" }));
    expect(refused.status).toBe(503);
    expect(refused.headers.get("retry-after")).toBe("15");
    const error = await errorOf(refused);
    expect(error.code).toBe("backlog_full");
    expect(error.message).toContain("7 events (cap 10, 3 events kept for critical events)");
    expect(error.details).toMatchObject({ backlog_events: 7, max_backlog_events: 10, critical: false });
    // A batch that would cross the line is refused whole.
    expect((await t.post([t.ev(), t.ev()])).status).toBe(503);
    expect(t.store.lastSeq("live")).toBe(7);
    expect(t.store.list("live", { limit: 100 }).some((e) => e.body === "one too many")).toBe(false);
  });

  test("a fill or a kill switch still gets in while ordinary events are refused, up to the hard cap", async () => {
    const t = setup({ limits: { maxBacklogEvents: 10, criticalReserveEvents: 3 } });
    await t.post(Array.from({ length: 7 }, () => t.ev()));
    expect((await t.post(t.ev())).status).toBe(503);
    expect((await t.post(t.ev({ subtype: "BUY_FILLED" }))).status).toBe(201);
    expect((await t.post(t.ev({ subtype: "KILL_SWITCH", mode: "paper" }))).status).toBe(201);
    // Any severity-critical event counts, whatever its subtype.
    expect((await t.post(t.ev({ severity: "critical", subtype: "ORDER_REJECTED" }))).status).toBe(201);
    const atCap = await t.post(t.ev({ subtype: "SELL_FILLED" }));
    expect(atCap.status).toBe(503);
    expect(await errorOf(atCap)).toMatchObject({ code: "backlog_full", details: { critical: true } });
    expect(t.store.backlogUsage().events).toBe(10);
  });

  test("only critical events use the reserve: a batch of ticks and one fill is judged by its ticks, a lone kill switch still gets in", async () => {
    const t = setup({ limits: { maxBacklogEvents: 100, criticalReserveEvents: 10 } });
    await t.post(Array.from({ length: 85 }, () => t.ev()));
    // Its 5 ordinary events fit under the line (90): the fill rides along.
    expect((await t.post([...Array.from({ length: 5 }, () => t.ev()), t.ev({ subtype: "BUY_FILLED" })])).status).toBe(
      201,
    );
    expect(t.store.backlogUsage().events).toBe(91);
    // At the line a critical event in the batch does not open the reserve to its ticks.
    const mixed = await t.post([...Array.from({ length: 29 }, () => t.ev()), t.ev({ subtype: "BUY_FILLED" })]);
    expect(mixed.status).toBe(503);
    const error = await errorOf(mixed);
    expect(error).toMatchObject({
      code: "backlog_full",
      details: { backlog_events: 91, critical: false, request_events: { ordinary: 29, critical: 1 } },
    });
    expect(error.message).toContain(
      "a request is judged by its ordinary events (this one holds 29 ordinary and 1 critical)",
    );
    expect(error.message).toContain("send critical events in a request of their own");
    expect(t.store.backlogUsage().events).toBe(91);
    // The reserve is whole: a lone kill switch, then critical events up to the hard cap.
    expect((await t.post(t.ev({ subtype: "KILL_SWITCH" }))).status).toBe(201);
    expect((await t.post(Array.from({ length: 8 }, () => t.ev({ subtype: "SELL_FILLED" })))).status).toBe(201);
    expect(t.store.backlogUsage().events).toBe(100);
    const full = await t.post(t.ev({ subtype: "KILL_SWITCH" }));
    expect(await errorOf(full)).toMatchObject({ code: "backlog_full", details: { critical: true } });
  });

  test("a batch of ordinary and critical events must fit the hard cap as a whole", async () => {
    const t = setup({ limits: { maxBacklogEvents: 20, criticalReserveEvents: 5 } });
    await t.post(Array.from({ length: 14 }, () => t.ev()));
    const over = await t.post([t.ev(), ...Array.from({ length: 6 }, () => t.ev({ subtype: "BUY_FILLED" }))]);
    expect(await errorOf(over)).toMatchObject({
      code: "backlog_full",
      details: { critical: true, request_events: { ordinary: 1, critical: 6 } },
    });
    expect((await t.post([t.ev(), ...Array.from({ length: 5 }, () => t.ev({ subtype: "BUY_FILLED" }))])).status).toBe(
      201,
    );
    expect(t.store.backlogUsage().events).toBe(20);
  });

  test("room made by the flush lets ordinary events in again", async () => {
    const t = setup({ limits: { maxBacklogEvents: 5, criticalReserveEvents: 1 } });
    await t.post(Array.from({ length: 4 }, () => t.ev()));
    expect((await t.post(t.ev())).status).toBe(503);
    t.store.markFlushed(t.store.unflushed("live", 2).map((e) => e.id));
    expect((await t.post([t.ev(), t.ev()])).status).toBe(201);
    expect((await t.post(t.ev())).status).toBe(503);
  });

  test("concurrent requests cannot overshoot the cap together: in-flight events count", async () => {
    const t = setup({ limits: { maxBacklogEvents: 6, criticalReserveEvents: 1 } });
    // All 12 arrive before the group commit runs.
    const statuses = await Promise.all(Array.from({ length: 12 }, () => t.post(t.ev()).then((r) => r.status)));
    expect(statuses.filter((s) => s === 201)).toHaveLength(5);
    expect(statuses.filter((s) => s === 503)).toHaveLength(7);
    expect(t.store.backlogUsage().events).toBe(5);
  });

  test("the byte cap counts body and meta bytes, with its own critical reserve", async () => {
    const t = setup({ limits: { maxBacklogBytes: 10_000, criticalReserveBytes: 3_000 } });
    const big = "x".repeat(2_000);
    expect((await t.post([t.ev({ body: big }), t.ev({ body: big }), t.ev({ body: big })])).status).toBe(201);
    const refused = await t.post(t.ev({ body: big }));
    expect(refused.status).toBe(503);
    expect(await errorOf(refused)).toMatchObject({
      code: "backlog_full",
      details: { max_backlog_bytes: 10_000, critical: false },
    });
    expect((await t.post(t.ev({ body: big, subtype: "PNL_REALIZED" }))).status).toBe(201);
    expect(t.store.backlogUsage().bytes).toBeLessThanOrEqual(10_000);
  });

  test("the byte cap is hard on the real service: 16 concurrent events with 1 MB of meta each never take the backlog above ZOE_MAX_BACKLOG_BYTES", async () => {
    const dir = tempDir();
    cleanups.push(() => dir.cleanup());
    const svc = await startService({ dbPath: dir.file("zoe.db"), env: { ZOE_MAX_BACKLOG_BYTES: "1000000" } });
    try {
      const meta = { blob: "m".repeat(1_000_000) };
      const statuses = await Promise.all(
        Array.from({ length: 16 }, (_, i) =>
          fetch(`${svc.url}/local/events`, {
            method: "POST",
            headers: { "content-type": "application/json" },
            body: JSON.stringify({ mode: "live", source: "bot", type: "T", subtype: "TICK", body: `big ${i}`, meta }),
          }).then(async (r) => [r.status, ((await r.json()) as { error?: { code: string } }).error?.code]),
        ),
      );
      // Each is bigger than the room ordinary events have (900,000 bytes): all are refused.
      expect(statuses).toEqual(Array.from({ length: 16 }, () => [503, "backlog_full"]));
      const status = (await (await fetch(`${svc.url}/local/status`)).json()) as {
        capacity: { backlog_bytes: number; max_backlog_bytes: number };
      };
      expect(status.capacity.max_backlog_bytes).toBe(1_000_000);
      expect(status.capacity.backlog_bytes).toBeLessThanOrEqual(1_000_000);
    } finally {
      await svc.kill("SIGTERM");
    }
  });

  test("admission counts what the store counts: concurrent events fill the byte room exactly, multi-byte bodies by their UTF-8 bytes", async () => {
    const t = setup({ limits: { maxBacklogBytes: 1_000_000, criticalReserveBytes: 100_000 } });
    const meta = { blob: "m".repeat(220_000) };
    const size = Buffer.byteLength(JSON.stringify(meta)) + Buffer.byteLength("big") + 200;
    const statuses = await Promise.all(
      Array.from({ length: 16 }, () => t.post(t.ev({ body: "big", meta })).then((r) => r.status)),
    );
    const fit = Math.floor(900_000 / size);
    expect(statuses.filter((s) => s === 201)).toHaveLength(fit);
    expect(t.store.backlogUsage().bytes).toBe(fit * size);
    // A euro sign is 3 bytes of UTF-8 and 1 character: the room left is measured in bytes.
    const room = 900_000 - fit * size;
    const euros = "€".repeat(Math.floor((room - 202) / 3) + 1);
    expect((await t.post(t.ev({ body: euros }))).status).toBe(503);
    expect((await t.post(t.ev({ body: euros.slice(1) }))).status).toBe(201);
    expect(t.store.backlogUsage().bytes).toBeLessThanOrEqual(900_000);
  });

  test("below the free-disk floor plus the reserve only critical events get in; below the floor none; disk_low with Retry-After", async () => {
    const MiB = 1_048_576;
    const t = setup({ limits: { minFreeDiskBytes: 100 * MiB, criticalReserveBytes: 50 * MiB } });
    t.disk.free = 140 * MiB;
    const low = await t.post(t.ev());
    expect(low.status).toBe(503);
    expect(low.headers.get("retry-after")).toBe("60");
    expect(await errorOf(low)).toMatchObject({
      code: "disk_low",
      details: { free_disk_bytes: 140 * MiB, critical: false },
    });
    expect((await t.post(t.ev({ subtype: "TRADING_HALTED" }))).status).toBe(201);

    // The disk is sampled at most once a second: the change shows after the clock moves.
    t.disk.free = 90 * MiB;
    expect((await t.post(t.ev({ subtype: "RECONCILIATION_MISMATCH" }))).status).toBe(201);
    t.clock.advance(1_000);
    expect((await t.post(t.ev({ subtype: "RECONCILIATION_MISMATCH" }))).status).toBe(503);

    t.disk.free = 10_000 * MiB;
    t.clock.advance(1_000);
    expect((await t.post(t.ev())).status).toBe(201);
  });

  test("an unmeasurable disk never refuses on a guess", async () => {
    const t = setup({ limits: { minFreeDiskBytes: 100 } });
    t.disk.free = null;
    expect((await t.post(t.ev())).status).toBe(201);
  });

  test("health and metrics show how close the limits are", async () => {
    const t = setup({
      limits: {
        maxBacklogEvents: 10,
        criticalReserveEvents: 2,
        maxBacklogBytes: 1_000_000,
        criticalReserveBytes: 1000,
        minFreeDiskBytes: 1000,
      },
    });
    await t.post(Array.from({ length: 4 }, () => t.ev()));
    const health = (await (await t.handle("/health")).json()) as {
      modes: { live: { capacity: Record<string, unknown> } };
    };
    expect(health.modes.live.capacity).toMatchObject({
      accepting: "all",
      backlog_events: 4,
      max_backlog_events: 10,
      critical_reserve_events: 2,
      fill_ratio: 0.5,
    });
    let m = await t.metrics();
    expect(m.get('zoe_ingest_accepting{class="ordinary"}')).toBe(1);
    expect(m.get("zoe_backlog_fill_ratio")).toBe(0.5);
    expect(m.get("zoe_backlog_max_events")).toBe(10);

    await t.post(Array.from({ length: 4 }, () => t.ev()));
    expect(
      ((await (await t.handle("/local/state?mode=live")).json()) as { health: { capacity: { accepting: string } } })
        .health.capacity.accepting,
    ).toBe("critical");
    m = await t.metrics();
    expect(m.get('zoe_ingest_accepting{class="ordinary"}')).toBe(0);
    expect(m.get('zoe_ingest_accepting{class="critical"}')).toBe(1);
    expect(m.get("zoe_backlog_fill_ratio")).toBe(1);
    await t.post([t.ev({ subtype: "KILL_SWITCH" }), t.ev({ subtype: "KILL_SWITCH" })]);
    m = await t.metrics();
    expect(m.get('zoe_ingest_accepting{class="critical"}')).toBe(0);
  });
});

describe("isCritical()", () => {
  const subtypes = new Set(["BUY_FILLED"]);
  test("critical severity or a critical subtype", () => {
    expect(isCritical({ subtype: "BUY_FILLED" }, subtypes)).toBe(true);
    expect(isCritical({ subtype: "TICK", severity: "critical" }, subtypes)).toBe(true);
    expect(isCritical({ subtype: "TICK", severity: "error" }, subtypes)).toBe(false);
  });
});

describe("loadLimitsConfig()", () => {
  test("defaults: 5M events, 2 GiB, 256 MiB free disk, reserves of 10,000 events and 64 MiB", () => {
    expect(loadLimitsConfig({})).toEqual({
      maxBacklogEvents: 5_000_000,
      maxBacklogBytes: 2 * 1_073_741_824,
      minFreeDiskBytes: 256 * 1_048_576,
      criticalReserveEvents: 10_000,
      criticalReserveBytes: 64 * 1_048_576,
    });
  });

  test("small caps get a reserve of a tenth; 0 turns a cap off", () => {
    expect(loadLimitsConfig({ ZOE_MAX_BACKLOG_EVENTS: "1000", ZOE_MAX_BACKLOG_BYTES: "100000" })).toMatchObject({
      criticalReserveEvents: 100,
      criticalReserveBytes: 10_000,
    });
    expect(
      loadLimitsConfig({ ZOE_MAX_BACKLOG_EVENTS: "0", ZOE_MAX_BACKLOG_BYTES: "0", ZOE_MIN_FREE_DISK_BYTES: "0" }),
    ).toMatchObject({
      maxBacklogEvents: 0,
      maxBacklogBytes: 0,
      minFreeDiskBytes: 0,
      criticalReserveEvents: 0,
    });
  });

  test("refuses a reserve as large as its cap, and non-integers, naming the variable", () => {
    expect(() => loadLimitsConfig({ ZOE_MAX_BACKLOG_EVENTS: "100", ZOE_CRITICAL_RESERVE_EVENTS: "100" })).toThrow(
      /ZOE_CRITICAL_RESERVE_EVENTS: must be less than ZOE_MAX_BACKLOG_EVENTS/,
    );
    expect(() => loadLimitsConfig({ ZOE_MAX_BACKLOG_BYTES: "1000", ZOE_CRITICAL_RESERVE_BYTES: "5000" })).toThrow(
      ConfigError,
    );
    expect(() => loadLimitsConfig({ ZOE_MIN_FREE_DISK_BYTES: "1GB" })).toThrow(
      /ZOE_MIN_FREE_DISK_BYTES: expected an integer/,
    );
  });
});

test("BacklogFullError is a 503 with code backlog_full and Retry-After", () => {
  const e = new BacklogFullError("full");
  expect([e.status, e.code, e.retryAfter]).toEqual([503, "backlog_full", 15]);
});
