// What start-up and ingest cost must not grow with the number of stored rows:
// every statement they run is checked with EXPLAIN QUERY PLAN for a walk of
// local_events (a SCAN, or a search that reads all of a mode's rows).
import { Database } from "bun:sqlite";
import { afterEach, beforeEach, expect, test } from "bun:test";
import { manualClock } from "../../src/lib/clock.ts";
import { createHealth } from "../../src/ops/health.ts";
import { openStore } from "../../src/store/store.ts";
import { tempDir } from "../helpers/tmp.ts";

let dir: ReturnType<typeof tempDir>;
beforeEach(() => {
  dir = tempDir("zoe-plans-");
});
afterEach(() => dir.cleanup());

/** Records the SQL of every statement prepared or run on any Database while `work` runs. */
function recordSql(work: () => void | Promise<void>): Promise<string[]> {
  const proto = Database.prototype as unknown as Record<
    "query" | "prepare" | "run",
    (sql: string, ...rest: unknown[]) => unknown
  >;
  const saved = { query: proto.query, prepare: proto.prepare, run: proto.run };
  const seen = new Set<string>();
  for (const name of ["query", "prepare", "run"] as const) {
    const original = saved[name];
    proto[name] = function (this: Database, sql: string, ...rest: unknown[]) {
      seen.add(sql);
      return original.call(this, sql, ...rest);
    };
  }
  return Promise.resolve(work())
    .finally(() => Object.assign(proto, saved))
    .then(() => [...seen]);
}

/** The plan lines of `sql` that walk local_events instead of seeking in it. */
function walks(db: Database, sql: string): string[] {
  if (!/^\s*(SELECT|INSERT|UPDATE|DELETE|WITH)/i.test(sql)) return []; // pragmas, BEGIN/COMMIT, savepoints
  const plan = db.query(`EXPLAIN QUERY PLAN ${sql}`).all() as { detail: string }[];
  // An upper bound on seq alone walks from the mode's first row, unless the
  // statement reads down from the bound (ORDER BY seq DESC with a LIMIT).
  const readsDown = /ORDER BY seq DESC LIMIT/i.test(sql);
  return plan
    .map((p) => p.detail)
    .filter(
      (d) =>
        /\bSCAN local_events\b/.test(d) ||
        (!readsDown &&
          /SEARCH local_events USING (COVERING )?INDEX idx_local_events_mode_seq \(mode=\? AND seq<\?\)/.test(d)),
    )
    .map((d) => `${d}  <-  ${sql.replace(/\s+/g, " ").slice(0, 160)}`);
}

test("openStore(), appends, /health's reads and a retention pass run no statement that walks local_events", async () => {
  const path = dir.file("zoe.db");
  const clock = manualClock("2026-03-01T00:00:00Z");
  // A store with history: flushed, unflushed and idempotent events in both modes.
  const seed = openStore({ path, clock });
  const stored = await seed.append(
    Array.from({ length: 40 }, (_, i) => ({
      mode: i % 2 ? ("live" as const) : ("paper" as const),
      source: "bot",
      type: "ORDER",
      subtype: "X",
      body: `e${i}`,
    })),
  );
  seed.markFlushed(stored.slice(0, 30).map((r) => r.id));
  seed.close();

  let store!: ReturnType<typeof openStore>;
  const sql = await recordSql(async () => {
    store = openStore({ path, clock, retentionMs: 86_400_000 });
    const health = createHealth({ store, clock, startedAt: clock.now() });
    health.health("live");
    health.health("paper");
    store.backlogUsage();
    await store.append([{ mode: "live", source: "bot", type: "ORDER", subtype: "X", body: "one" }]);
    await store.append([
      { mode: "paper", source: "bot", type: "ORDER", subtype: "X", body: "a", idempotency_key: "k-a" },
      {
        mode: "paper",
        source: "bot",
        type: "ORDER",
        subtype: "X",
        body: "b",
        id: "01900000-0000-7000-8000-0000000000bb",
      },
    ]);
    clock.advance(2 * 86_400_000);
    expect(store.prune()).toBeGreaterThan(0);
  });
  try {
    expect(sql.some((s) => s.includes("DELETE FROM local_events"))).toBe(true);
    expect(sql.some((s) => s.includes("INSERT INTO local_events"))).toBe(true);
    expect(sql.flatMap((s) => walks(store.db, s))).toEqual([]);
  } finally {
    store.close();
  }
});

test("the walk check catches the plan start-up used to have (retention's seq < ? on the (mode, seq) index)", () => {
  const store = openStore({ path: dir.file("zoe.db") });
  try {
    const old =
      "SELECT rowid FROM local_events WHERE flushed = 1 AND flushed_at < ? AND mode = ? AND seq < ? LIMIT 5000";
    expect(walks(store.db, old)).toHaveLength(1);
    expect(walks(store.db, "SELECT COUNT(*) FROM local_events")).toHaveLength(1);
  } finally {
    store.close();
  }
});

test("list() by subtype or severity seeks in their indexes, one seek per listed value, never along (mode, seq)", async () => {
  const store = openStore({ path: dir.file("zoe.db") });
  try {
    await store.append([{ mode: "live", source: "bot", type: "ORDER", subtype: "BUY_FILLED", body: "fill" }]);
    const sql = await recordSql(() => {
      store.list("live", { limit: 200, filter: { subtypes: ["BUY_FILLED", "SELL_FILLED", "KILL_SWITCH"] } });
      store.list("live", { limit: 200, sinceSeq: 10, filter: { subtypes: ["BUY_FILLED"], symbols: ["AAPL"] } });
      store.list("live", { limit: 200, beforeSeq: 90, filter: { severities: ["error", "critical"] } });
      store.list("live", { limit: 200, filter: { severities: ["warn", "error", "critical"], types: ["RISK"] } });
    });
    const filtered = sql.filter((s) => s.includes("INDEXED BY"));
    expect(filtered).toHaveLength(4);
    for (const s of filtered) {
      const plan = (store.db.query(`EXPLAIN QUERY PLAN ${s}`).all() as { detail: string }[]).map((p) => p.detail);
      const seeks = plan.filter((d) =>
        /^SEARCH local_events USING INDEX idx_local_events_mode_(subtype|severity)_seq/.test(d),
      );
      expect({ s, seeks: seeks.length }).toEqual({ s, seeks: (s.match(/INDEXED BY/g) ?? []).length });
      expect(seeks.every((d) => /\(mode=\? AND (subtype|severity)=\? AND seq>\? AND seq<\?\)/.test(d))).toBe(true);
      expect(plan.filter((d) => /idx_local_events_mode_seq|SCAN local_events/.test(d))).toEqual([]);
    }
  } finally {
    store.close();
  }
});
