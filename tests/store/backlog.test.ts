import { Database } from "bun:sqlite";
import { afterEach, beforeEach, expect, test } from "bun:test";
import { Quarantine } from "../../src/flush/quarantine.ts";
import { migrate, readMigrations } from "../../src/store/migrate.ts";
import { EVENT_BYTES_SQL, openStore } from "../../src/store/store.ts";
import { tempDir } from "../helpers/tmp.ts";

let dir: ReturnType<typeof tempDir>;
beforeEach(() => {
  dir = tempDir("zoe-backlog-");
});
afterEach(() => dir.cleanup());

type Row = { mode: string; events: number; bytes: number };
const truth = (db: Database) =>
  db
    .query(
      `SELECT m.mode, (SELECT COUNT(*) FROM local_events WHERE mode = m.mode AND flushed = 0) AS events,
              (SELECT COALESCE(SUM(${EVENT_BYTES_SQL}), 0) FROM local_events WHERE mode = m.mode AND flushed = 0) AS bytes
       FROM (SELECT 'live' AS mode UNION ALL SELECT 'paper') AS m ORDER BY m.mode`,
    )
    .all() as Row[];
const counters = (db: Database) =>
  db.query("SELECT mode, events, bytes FROM local_backlog ORDER BY mode").all() as Row[];

function insertRaw(db: Database, seq: number, flushed: number, body = `event ${seq}`) {
  db.query(
    `INSERT INTO local_events (id, mode, ts, seq, source, type, subtype, body, meta_json, idempotency_key, flushed, flushed_at)
     VALUES (?, 'live', '2026-01-01T00:00:00Z', ?, 'bot', 'ORDER', 'X', ?, '{"k":"värde"}', ?, ?, ?)`,
  ).run(`id-${seq}`, seq, body, `key-${seq}`, flushed, flushed === 1 ? "2026-01-01T00:00:00Z" : null);
}

test("migration 003 counts an existing database's backlog once: flushed and quarantined rows stay out", () => {
  const path = dir.file("v2.db");
  const db = new Database(path, { create: true, strict: true });
  const v2 = readMigrations().filter((m) => m.version <= 2);
  migrate(db, v2);
  for (let seq = 1; seq <= 50; seq++)
    insertRaw(db, seq, seq <= 30 ? 1 : seq <= 33 ? 2 : 0, seq % 2 ? "größe 😀" : "plain");
  db.close();

  const store = openStore({ path });
  try {
    expect(counters(store.db)).toEqual(truth(store.db));
    expect(store.backlogUsage("live").events).toBe(17);
    expect(store.backlog("live")).toBe(17);
  } finally {
    store.close();
  }
});

test("local_backlog follows appends, flush marks, quarantine, release, deletes and direct SQL, and a reopen reads it back", async () => {
  const path = dir.file("zoe.db");
  let store = openStore({ path });
  const check = () => {
    expect(counters(store.db)).toEqual(truth(store.db));
    const memory = ["live", "paper"].map((mode) => ({ mode, ...store.backlogUsage(mode as "live") }));
    expect(memory).toEqual(truth(store.db));
  };
  await Promise.all([
    store.append([{ mode: "live", source: "s", type: "T", subtype: "X", body: "größe 😀", meta: { k: "värde" } }]),
    store.append([
      { mode: "paper", source: "s", type: "T", subtype: "X", body: "b" },
      { mode: "live", source: "s", type: "T", subtype: "X", body: "c" },
    ]),
    // A request that fails whole adds nothing to the counters either.
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
  const [first, second] = store.unflushed("live", 2);
  store.markFlushed([first!.id]);
  check();
  const quarantine = new Quarantine(store, { now: () => Date.now() });
  quarantine.add([{ event: second!, reason: "test" }]);
  check();
  quarantine.release("live");
  check();
  // An operator's hand in the database is counted too (the triggers).
  store.db.run("UPDATE local_events SET flushed = 1 WHERE mode = 'paper'");
  store.db.run("DELETE FROM local_events WHERE mode = 'live' AND flushed = 0");
  store.reloadBacklog();
  check();
  await store.append([{ mode: "paper", source: "s", type: "T", subtype: "X", body: "after" }]);
  store.close();
  store = openStore({ path });
  check();
  expect(store.backlogUsage("paper").events).toBe(1);
  store.close();
});

test("recountBacklog() repairs counters that drifted from the rows", async () => {
  const store = openStore({ path: dir.file("zoe.db") });
  try {
    await store.append([{ mode: "live", source: "s", type: "T", subtype: "X", body: "a" }]);
    store.db.run("UPDATE local_backlog SET events = 99, bytes = 7");
    store.recountBacklog();
    expect(counters(store.db)).toEqual(truth(store.db));
    expect(store.backlogUsage("live").events).toBe(1);
  } finally {
    store.close();
  }
});

test("markFlushedRange() marks a seq range that holds exactly the expected events, and the counters follow", async () => {
  const store = openStore({ path: dir.file("zoe.db") });
  try {
    await store.append(
      Array.from({ length: 30 }, (_, i) => ({
        mode: "live" as const,
        source: "bot",
        type: "T",
        subtype: "X",
        body: `e${i}`,
      })),
    );
    expect(store.markFlushedRange("live", 10, 20, 10)).toBe(true);
    const flushed = store.db.query("SELECT seq FROM local_events WHERE flushed = 1 ORDER BY seq").all() as {
      seq: number;
    }[];
    expect(flushed.map((r) => r.seq)).toEqual(Array.from({ length: 10 }, (_, i) => 11 + i));
    expect(store.backlog("live")).toBe(20);
    expect(counters(store.db)).toEqual(truth(store.db));
  } finally {
    store.close();
  }
});

test("markFlushedRange() changes nothing when the range holds an event it was not told of (one released from the quarantine)", async () => {
  const store = openStore({ path: dir.file("zoe.db") });
  const quarantine = new Quarantine(store, { now: () => Date.now() });
  try {
    const events = await store.append(
      Array.from({ length: 10 }, (_, i) => ({
        mode: "live" as const,
        source: "bot",
        type: "T",
        subtype: "X",
        body: `e${i}`,
      })),
    );
    const fifth = store.unflushed("live", 10)[4]!;
    quarantine.add([{ event: fifth, reason: "test" }]);
    quarantine.release("live");
    // The flusher acknowledged the nine it sent; the released fifth is queued again, unsent.
    expect(store.markFlushedRange("live", 0, 10, 9)).toBe(false);
    expect(store.backlog("live")).toBe(10);
    expect(store.db.query("SELECT COUNT(*) AS n FROM local_events WHERE flushed = 1").get()).toEqual({ n: 0 });
    expect(events).toHaveLength(10);
  } finally {
    store.close();
  }
});

test("a flush mark under synchronous=FULL (run without its fsync) leaves the connection at FULL afterwards", async () => {
  const store = openStore({ path: dir.file("zoe.db"), synchronous: "FULL" });
  try {
    await store.append([{ mode: "live", source: "bot", type: "T", subtype: "X", body: "e" }]);
    store.markFlushed([store.unflushed("live", 1)[0]!.id]);
    expect(store.db.query("PRAGMA synchronous").get()).toEqual({ synchronous: 2 });
  } finally {
    store.close();
  }
});
