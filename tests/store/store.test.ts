import { Database } from "bun:sqlite";
import { afterEach, beforeEach, describe, expect, test } from "bun:test";
import { manualClock } from "../../src/lib/clock.ts";
import {
  ConflictError,
  IdempotencyConflictError,
  StartupError,
  StoreUnavailableError,
} from "../../src/domain/errors.ts";
import type { EventInput, Mode } from "../../supabase/functions/_shared/event-schema.ts";
import {
  type EventStore,
  openStore,
  type StoreOptions,
  storeFailure,
  type StoredEvent,
} from "../../src/store/store.ts";
import { CONFLICTING_CHANGES } from "../helpers/idempotency.ts";
import { tempDir } from "../helpers/tmp.ts";

let dir: ReturnType<typeof tempDir>;
const open: EventStore[] = [];

beforeEach(() => {
  dir = tempDir("zoe-store-");
});
afterEach(() => {
  for (const s of open.splice(0)) s.close();
  dir.cleanup();
});

function store(options: Partial<StoreOptions> = {}): EventStore {
  const s = openStore({ path: dir.file("zoe.db"), ...options });
  open.push(s);
  return s;
}

function reopen(s: EventStore, options: Partial<StoreOptions> = {}): EventStore {
  s.close();
  open.splice(open.indexOf(s), 1);
  return store(options);
}

let n = 0;
function ev(mode: Mode = "live", extra: Partial<EventInput> = {}): EventInput {
  n++;
  return { mode, source: "bot", type: "ORDER", subtype: "BUY_FILLED", body: `event ${n}`, ...extra };
}

/** Seqs of `mode` in physical insertion (rowid) order: the commit order. */
function seqsInCommitOrder(s: EventStore, mode: Mode): number[] {
  return (s.db.query("SELECT seq FROM local_events WHERE mode = ? ORDER BY rowid").all(mode) as { seq: number }[]).map(
    (r) => r.seq,
  );
}

function fillDisk(s: EventStore): void {
  const pages = (s.db.query("PRAGMA page_count").get() as { page_count: number }).page_count;
  s.db.run(`PRAGMA max_page_count = ${pages}`);
}

function count(s: EventStore): number {
  return (s.db.query("SELECT COUNT(*) AS n FROM local_events").get() as { n: number }).n;
}

describe("seq assignment", () => {
  test("concurrent appends get unique, gapless seqs per mode whose order is the commit order", async () => {
    const s = store();
    const published: StoredEvent[] = [];
    s.onAppend((events) => published.push(...events));
    const requests = Array.from({ length: 120 }, (_, i) => {
      const mode: Mode = i % 3 === 0 ? "paper" : "live";
      return Array.from({ length: 1 + (i % 4) }, () => ev(mode));
    });
    const results = await Promise.all(requests.map((r) => s.append(r)));

    for (const mode of ["paper", "live"] as const) {
      const seqs = results.flatMap((r, i) => (requests[i]![0]!.mode === mode ? r.map((x) => x.seq) : []));
      expect([...seqs].sort((a, b) => a - b)).toEqual(Array.from({ length: seqs.length }, (_, i) => i + 1));
      expect(seqsInCommitOrder(s, mode)).toEqual(Array.from({ length: seqs.length }, (_, i) => i + 1));
      const pub = published.filter((e) => e.mode === mode).map((e) => e.seq);
      expect(pub).toEqual(Array.from({ length: seqs.length }, (_, i) => i + 1));
      expect(s.lastSeq(mode)).toBe(seqs.length);
    }
    // Within a request the seqs follow the request order and are contiguous.
    for (const r of results) r.forEach((x, i) => i > 0 && expect(x.seq).toBe(r[i - 1]!.seq + 1));
  });

  test("a request acknowledged before the next was sent gets a smaller seq", async () => {
    const s = store();
    const seqs: number[] = [];
    for (let i = 0; i < 20; i++) seqs.push((await s.append([ev()]))[0]!.seq);
    expect(seqs).toEqual(Array.from({ length: 20 }, (_, i) => i + 1));
  });

  test("events whose ts arrive out of order are still totally ordered by seq", async () => {
    const s = store();
    const stamps = [
      "2026-01-05T10:00:00Z",
      "2026-01-01T10:00:00+02:00",
      "2026-01-09T00:00:00.123Z",
      "2025-12-31T23:59:59-05:00",
    ];
    for (const ts of stamps) await s.append([ev("live", { ts, body: ts })]);
    const listed = s.list("live", { sinceSeq: 0, limit: 100 });
    expect(listed.map((e) => e.seq)).toEqual([1, 2, 3, 4]);
    expect(listed.map((e) => e.ts)).toEqual(stamps);
    expect(listed.map((e) => e.body)).toEqual(stamps);
  });

  test("counters are recovered from MAX(seq) on reopen and continue without reuse", async () => {
    let s = store();
    await s.append([ev("live"), ev("live"), ev("paper")]);
    s = reopen(s);
    expect(s.lastSeq("live")).toBe(2);
    expect(s.lastSeq("paper")).toBe(1);
    const [r] = await s.append([ev("live")]);
    expect(r!.seq).toBe(3);
  });

  test("without group commit each append commits alone, with the same guarantees", async () => {
    const s = store({ groupCommit: false });
    const results = await Promise.all(Array.from({ length: 30 }, () => s.append([ev("paper"), ev("paper")])));
    expect(
      results
        .flat()
        .map((r) => r.seq)
        .sort((a, b) => a - b),
    ).toEqual(Array.from({ length: 60 }, (_, i) => i + 1));
    expect(seqsInCommitOrder(s, "paper")).toEqual(Array.from({ length: 60 }, (_, i) => i + 1));
  });
});

describe("stored shape", () => {
  test("defaults: UUIDv7 id, idempotency_key = id, severity info, ts now (UTC), meta {}, symbol null", async () => {
    const clock = manualClock("2026-03-02T14:30:00.000Z");
    const s = store({ clock });
    const [r] = await s.append([ev()]);
    expect(r!.id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(r!.idempotency_key).toBe(r!.id);
    const [e] = s.list("live", { limit: 1 });
    expect(e).toMatchObject({
      id: r!.id,
      seq: 1,
      severity: "info",
      ts: "2026-03-02T14:30:00.000Z",
      meta: {},
      symbol: null,
    });
  });

  test("given fields are kept: id, key, ts with offset, symbol, severity, meta", async () => {
    const s = store();
    const input = ev("paper", {
      id: "0190a6f0-0000-7000-8000-000000000001",
      idempotency_key: "order-17-fill",
      ts: "2026-03-02T09:30:00.5-05:00",
      symbol: "AAPL",
      severity: "critical",
      meta: { qty: 10, nested: { price: 187.5 } },
    });
    await s.append([input]);
    const [e] = s.list("paper", { limit: 1 });
    expect(e).toEqual({ ...input, seq: 1 } as StoredEvent);
  });

  test("list() without sinceSeq gives the newest `limit` ascending; with sinceSeq, seq > sinceSeq ascending", async () => {
    const s = store();
    await s.append(Array.from({ length: 10 }, () => ev()));
    expect(s.list("live", { limit: 3 }).map((e) => e.seq)).toEqual([8, 9, 10]);
    expect(s.list("live", { sinceSeq: 4, limit: 3 }).map((e) => e.seq)).toEqual([5, 6, 7]);
    expect(s.list("live", { sinceSeq: 10, limit: 3 })).toEqual([]);
    expect(s.list("paper", { limit: 3 })).toEqual([]);
  });
});

describe("idempotency", () => {
  test("a repeated idempotency_key returns the stored id and seq with duplicate: true and stores nothing", async () => {
    const s = store();
    const input = ev("live", { idempotency_key: "k1", meta: { qty: 10, price: 187.5 } });
    const [first] = await s.append([input]);
    // A retry may carry a new ts or id, and meta keys in another order: still the same event.
    const [again] = await s.append([{ ...input, ts: "2026-06-02T14:00:00Z", meta: { price: 187.5, qty: 10 } }]);
    const [withDefaults] = await s.append([{ ...input, severity: "info", symbol: null }]);
    expect(again).toEqual({ ...first!, duplicate: true });
    expect(withDefaults).toEqual({ ...first!, duplicate: true });
    expect(count(s)).toBe(1);
    expect(s.lastSeq("live")).toBe(1);
  });

  for (const [field, change] of CONFLICTING_CHANGES) {
    test(`reusing a key with another ${field} is refused as idempotency_conflict naming the stored event`, async () => {
      const s = store();
      const input = ev("live", { idempotency_key: "order-1", symbol: "AAPL", meta: { qty: 10 } });
      const [first] = await s.append([input]);
      const error = await s.append([{ ...input, ...change }]).then(
        () => null,
        (e: unknown) => e,
      );
      expect(error).toBeInstanceOf(IdempotencyConflictError);
      const conflict = error as IdempotencyConflictError;
      expect([conflict.status, conflict.code]).toEqual([409, "idempotency_conflict"]);
      expect(conflict.message).toBe(
        `Cannot store event 0: idempotency_key "order-1" is already used by event ${first!.id} (mode live, seq 1), which differs in ${field}; reuse a key only to retry the same event`,
      );
      expect(conflict.details).toEqual([
        {
          path: "/0/idempotency_key",
          message: expect.stringContaining(`differs in ${field}`),
          stored_event: { id: first!.id, mode: "live", seq: 1 },
          fields: [field],
        },
      ]);
      expect(count(s)).toBe(1);
      expect([s.lastSeq("live"), s.lastSeq("paper")]).toEqual([1, 0]);
    });
  }

  test("a conflict in an array refuses the whole request, naming the event's index, and advances no counter", async () => {
    const s = store();
    const [stored] = await s.append([ev("live", { idempotency_key: "taken" })]);
    const error = await s.append([ev("live"), ev("paper"), ev("paper", { idempotency_key: "taken" })]).then(
      () => null,
      (e: unknown) => e,
    );
    expect((error as IdempotencyConflictError).code).toBe("idempotency_conflict");
    expect((error as IdempotencyConflictError).details).toMatchObject([
      { path: "/2/idempotency_key", stored_event: { id: stored!.id, mode: "live", seq: 1 }, fields: ["mode", "body"] },
    ]);
    expect(count(s)).toBe(1);
    expect([s.lastSeq("live"), s.lastSeq("paper")]).toEqual([1, 0]);
    expect((await s.append([ev("paper")]))[0]!.seq).toBe(1);
  });

  test("two different events under one key inside one array conflict with the first", async () => {
    const s = store();
    const error = await s.append([ev("live", { idempotency_key: "x" }), ev("live", { idempotency_key: "x" })]).then(
      () => null,
      (e: unknown) => e,
    );
    expect((error as IdempotencyConflictError).details).toMatchObject([
      { path: "/1/idempotency_key", stored_event: { mode: "live", seq: 1 }, fields: ["body"] },
    ]);
    expect(count(s)).toBe(0);
  });

  test("an event retried with its own id (no key) is a duplicate too", async () => {
    const s = store();
    const input = ev("live", { id: "0190a6f0-0000-7000-8000-0000000000aa" });
    const [a] = await s.append([input]);
    const [b] = await s.append([input]);
    expect(b).toEqual({ ...a!, duplicate: true });
  });

  test("duplicates inside one array resolve to the first occurrence", async () => {
    const s = store();
    const a = ev("live", { idempotency_key: "a" });
    const results = await s.append([a, ev("live", { idempotency_key: "b" }), { ...a }]);
    expect(results.map((r) => [r.seq, r.duplicate])).toEqual([
      [1, false],
      [2, false],
      [1, true],
    ]);
    expect(results[2]!.id).toBe(results[0]!.id);
    expect(count(s)).toBe(2);
  });

  test("concurrent requests carrying the same key store it once", async () => {
    const s = store();
    const same = ev("live", { idempotency_key: "same" });
    const results = await Promise.all(Array.from({ length: 10 }, () => s.append([{ ...same }])));
    expect(results.filter((r) => !r[0]!.duplicate)).toHaveLength(1);
    expect(new Set(results.map((r) => r[0]!.seq))).toEqual(new Set([1]));
    expect(count(s)).toBe(1);
  });
});

describe("atomicity", () => {
  test("an id already used under another key rejects the whole array and advances no counter", async () => {
    const s = store();
    const id = "0190a6f0-0000-7000-8000-0000000000bb";
    await s.append([ev("live", { id, idempotency_key: "first" })]);
    const attempt = s.append([ev("live"), ev("paper"), ev("live", { id, idempotency_key: "second" })]);
    const error = await attempt.then(
      () => null,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(ConflictError);
    expect((error as ConflictError).status).toBe(409);
    expect((error as ConflictError).details).toEqual([{ path: "/2/id", message: "Already used by another event" }]);
    expect(count(s)).toBe(1);
    expect(s.lastSeq("live")).toBe(1);
    expect(s.lastSeq("paper")).toBe(0);
    const [next] = await s.append([ev("live")]);
    expect(next!.seq).toBe(2);
  });

  test("a failing request in a group commit rolls back alone; its neighbours keep gapless seqs", async () => {
    const s = store();
    const id = "0190a6f0-0000-7000-8000-0000000000cc";
    await s.append([ev("live", { id })]);
    const outcomes = await Promise.allSettled([
      s.append([ev("live"), ev("live")]),
      s.append([ev("live"), ev("live", { id, idempotency_key: "other" })]),
      s.append([ev("live")]),
    ]);
    expect(outcomes.map((o) => o.status)).toEqual(["fulfilled", "rejected", "fulfilled"]);
    const ok = outcomes.flatMap((o) => (o.status === "fulfilled" ? o.value.map((r) => r.seq) : []));
    expect(ok).toEqual([2, 3, 4]);
    expect(seqsInCommitOrder(s, "live")).toEqual([1, 2, 3, 4]);
  });
});

describe("failing disk", () => {
  test("bun:sqlite errors carry the SQLite result code that storeFailure maps", () => {
    const s = store();
    fillDisk(s);
    let raw: unknown;
    try {
      s.db.transaction(() => {
        for (let i = 0; i < 200; i++)
          s.db.run("INSERT INTO local_state_snapshots (mode, state_json) VALUES ('live', ?)", ["x".repeat(4000)]);
      })();
    } catch (error) {
      raw = error;
    }
    expect((raw as { code?: string }).code).toBe("SQLITE_FULL");
    const mapped = storeFailure("Cannot store events", raw);
    expect(mapped).toBeInstanceOf(StoreUnavailableError);
    expect(mapped.message).toBe("Cannot store events: disk or database is full");
    expect(storeFailure("x", new Error("other"))).not.toBeInstanceOf(StoreUnavailableError);
  });

  test("a full disk rejects appends with StoreUnavailableError, stores nothing, and recovers without a gap", async () => {
    const s = store();
    await s.append([ev()]);
    fillDisk(s);
    const big = () => Array.from({ length: 50 }, () => ev("live", { body: "x".repeat(8000) }));
    const outcomes = await Promise.allSettled([s.append(big()), s.append(big()), s.append([ev("paper")])]);
    for (const o of outcomes) {
      expect(o.status).toBe("rejected");
      const reason = (o as PromiseRejectedResult).reason as StoreUnavailableError;
      expect(reason).toBeInstanceOf(StoreUnavailableError);
      expect(reason.status).toBe(503);
      expect(reason.retryAfter).toBeGreaterThan(0);
      expect(reason.message).toContain("disk or database is full");
      expect((reason.cause as { code: string }).code).toBe("SQLITE_FULL");
    }
    expect(count(s)).toBe(1);
    expect(s.lastSeq("live")).toBe(1);
    expect(s.lastSeq("paper")).toBe(0);

    s.db.run("PRAGMA max_page_count = 1073741823");
    const [r] = await s.append([ev()]);
    expect(r!.seq).toBe(2);
    expect(seqsInCommitOrder(s, "live")).toEqual([1, 2]);
  });

  test("a read-only database rejects appends and state snapshots with StoreUnavailableError", async () => {
    const s = store();
    s.db.run("PRAGMA query_only = ON");
    const error = await s.append([ev()]).then(
      () => null,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(StoreUnavailableError);
    expect((error as Error).message).toBe("Cannot store events: database is read-only");
    expect(() => s.putState("live", { cash: 1 })).toThrow(StoreUnavailableError);
    s.db.run("PRAGMA query_only = OFF");
    expect((await s.append([ev()]))[0]!.seq).toBe(1);
  });
});

describe("listeners and lifecycle", () => {
  test("a throwing onAppend listener neither fails the append nor starves other listeners", async () => {
    const reported: unknown[] = [];
    const s = store({ onListenerError: (e) => reported.push(e) });
    const seen: number[] = [];
    s.onAppend(() => {
      throw new Error("subscriber bug");
    });
    s.onAppend((events) => seen.push(...events.map((e) => e.seq)));
    const [r] = await s.append([ev()]);
    expect(r!.seq).toBe(1);
    expect(seen).toEqual([1]);
    expect(reported).toHaveLength(1);
  });

  test("onAppend gets only newly stored events, not duplicates, and stops after unsubscribe", async () => {
    const s = store();
    const seen: string[] = [];
    const off = s.onAppend((events) => seen.push(...events.map((e) => e.idempotency_key)));
    const a = ev("live", { idempotency_key: "a" });
    await s.append([a, { ...a }]);
    off();
    await s.append([ev("live", { idempotency_key: "b" })]);
    expect(seen).toEqual(["a"]);
  });

  test("close() commits appends still waiting for their group commit", async () => {
    let s = store();
    const pending = s.append([ev(), ev()]);
    s = reopen(s);
    expect((await pending).map((r) => r.seq)).toEqual([1, 2]);
    expect(s.lastSeq("live")).toBe(2);
  });

  test("append() after close() is a StoreUnavailableError", async () => {
    const s = store();
    s.close();
    await expect(s.append([ev()])).rejects.toBeInstanceOf(StoreUnavailableError);
  });

  test("ping() and healthy() report a sound database", () => {
    const s = store();
    expect(s.ping()).toBe(true);
    expect(s.healthy()).toBe(true);
  });
});

describe("single instance", () => {
  test("a second store on the same file refuses to open, naming the file and the lock", () => {
    store();
    let error: unknown;
    try {
      openStore({ path: dir.file("zoe.db") });
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(StartupError);
    expect((error as StartupError).code).toBe("db_locked");
    expect((error as Error).message).toContain(dir.file("zoe.db"));
    expect((error as Error).message).toContain("another zoe-local process");
  });

  test("the lock is released on close, so a later instance can open", async () => {
    const s = store();
    await s.append([ev()]);
    const again = reopen(s);
    expect(again.lastSeq("live")).toBe(1);
  });

  test("a database that cannot be opened is a StartupError naming the path", () => {
    const path = dir.file("not-a-db");
    Bun.write(path, "this is not sqlite ".repeat(100));
    expect(() => openStore({ path })).toThrow(/Cannot open database .*not-a-db/);
  });

  test("the parent folder is created", async () => {
    const s = openStore({ path: dir.file("nested/deeper/zoe.db") });
    open.push(s);
    expect((await s.append([ev()]))[0]!.seq).toBe(1);
  });
});

describe("retention", () => {
  const DAY = 86_400_000;

  test("prune() removes flushed events older than retention, never unflushed ones, and keeps each mode's newest seq", async () => {
    const clock = manualClock("2026-01-01T00:00:00Z");
    let s = store({ clock, retentionMs: 7 * DAY });
    const live = await s.append(Array.from({ length: 5 }, () => ev("live")));
    const paper = await s.append(Array.from({ length: 3 }, () => ev("paper")));
    // Flush live 1..4 and all paper on day 0; live 5 stays unflushed.
    s.markFlushed([...live.slice(0, 4), ...paper].map((r) => r.id));
    clock.advance(3 * DAY);
    const late = await s.append([ev("live")]);
    s.markFlushed(late.map((r) => r.id)); // flushed on day 3: younger than retention

    clock.advance(5 * DAY); // day 8: day-0 flushes are past 7 days
    expect(s.prune()).toBe(4 + 2);
    const liveLeft = s.list("live", { sinceSeq: 0, limit: 100 }).map((e) => e.seq);
    expect(liveLeft).toEqual([5, 6]); // 5 unflushed; 6 flushed too recently (and newest)
    expect(s.list("paper", { sinceSeq: 0, limit: 100 }).map((e) => e.seq)).toEqual([3]); // newest kept

    s = reopen(s, { clock, retentionMs: 7 * DAY });
    expect(s.lastSeq("paper")).toBe(3);
    expect((await s.append([ev("paper")]))[0]!.seq).toBe(4);
  });

  test("prune() with nothing old enough removes nothing", async () => {
    const clock = manualClock("2026-01-01T00:00:00Z");
    const s = store({ clock, retentionMs: DAY });
    const r = await s.append([ev(), ev()]);
    s.markFlushed(r.map((x) => x.id));
    expect(s.prune()).toBe(0);
  });
});

describe("flusher seam", () => {
  test("unflushed/markFlushed/backlog/oldestUnflushedAt/logFlush/lastFlush track the queue", async () => {
    const clock = manualClock("2026-02-01T12:00:00Z");
    const s = store({ clock });
    const r = await s.append([ev("live"), ev("live"), ev("live"), ev("paper")]);
    expect(s.backlog("live")).toBe(3);
    expect(s.oldestUnflushedAt("live")).toBe("2026-02-01T12:00:00.000Z");
    expect(s.unflushed("live", 2).map((e) => e.seq)).toEqual([1, 2]);
    expect(s.markFlushed([r[0]!.id, r[1]!.id, r[0]!.id])).toBe(2);
    expect(s.backlog("live")).toBe(1);
    expect(s.unflushed("live", 10).map((e) => e.seq)).toEqual([3]);
    expect(s.lastFlush("live")).toBeNull();
    s.logFlush({ mode: "live", count: 2, last_seq: 2, status: "ok" });
    expect(s.lastFlush("live")).toMatchObject({
      mode: "live",
      count: 2,
      last_seq: 2,
      status: "ok",
      error: null,
      ts: "2026-02-01T12:00:00.000Z",
    });
    expect(s.backlog("paper")).toBe(1);
  });
});

describe("state snapshots", () => {
  test("putState() keeps the newest N per mode and latestState() returns the newest", () => {
    const clock = manualClock("2026-01-01T00:00:00Z");
    const s = store({ clock, stateKeep: 3 });
    for (let i = 1; i <= 6; i++) {
      clock.advance(1000);
      s.putState("live", { cash: i });
    }
    s.putState("paper", { cash: -1 });
    expect(s.latestState("live")).toEqual({ ts: "2026-01-01T00:00:06.000Z", state: { cash: 6 } });
    const kept = s.db.query("SELECT state_json FROM local_state_snapshots WHERE mode = 'live' ORDER BY id").all() as {
      state_json: string;
    }[];
    expect(kept.map((k) => JSON.parse(k.state_json).cash)).toEqual([4, 5, 6]);
    expect(s.latestState("paper")!.state).toEqual({ cash: -1 });
  });

  test("latestState() is null before any snapshot", () => {
    expect(store().latestState("live")).toBeNull();
  });
});

test("the schema applied is the seed's three tables with the pragmas the issue asks for", () => {
  const s = store({ synchronous: "FULL" });
  const tables = (
    s.db.query("SELECT name FROM sqlite_master WHERE type = 'table' AND name LIKE 'local_%' ORDER BY name").all() as {
      name: string;
    }[]
  ).map((t) => t.name);
  for (const t of ["local_events", "local_flush_log", "local_state_snapshots"]) expect(tables).toContain(t);
  const pragma = (name: string) => Object.values(s.db.query(`PRAGMA ${name}`).get() as Record<string, unknown>)[0];
  expect(pragma("journal_mode")).toBe("wal");
  expect(pragma("synchronous")).toBe(2); // FULL
  expect(pragma("wal_autocheckpoint")).toBe(1000);
  expect(pragma("busy_timeout")).toBe(5000);
  const other = new Database(dir.file("zoe.db"), { readonly: true });
  expect((other.query("PRAGMA user_version").get() as { user_version: number }).user_version).toBeGreaterThanOrEqual(1);
  other.close();
});
