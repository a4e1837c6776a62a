import { afterEach, beforeEach, expect, test } from "bun:test";
import { rmSync } from "node:fs";
import { StoreUnavailableError } from "../../src/domain/errors.ts";
import type { EventInput } from "../../supabase/functions/_shared/event-schema.ts";
import { type EventStore, openStore } from "../../src/store/store.ts";
import { WalSync } from "../../src/store/wal-sync.ts";
import { tempDir } from "../helpers/tmp.ts";

let dir: ReturnType<typeof tempDir>;
const open: EventStore[] = [];
beforeEach(() => {
  dir = tempDir("zoe-walsync-");
});
afterEach(() => {
  for (const s of open.splice(0)) s.close();
  dir.cleanup();
});

const ev = (body: string, extra: Partial<EventInput> = {}): EventInput => ({
  mode: "live",
  source: "bot",
  type: "ORDER",
  subtype: "X",
  body,
  ...extra,
});
const rowCount = (s: EventStore) => (s.db.query("SELECT COUNT(*) AS n FROM local_events").get() as { n: number }).n;

function fullStore(): EventStore {
  const s = openStore({ path: dir.file("zoe.db"), synchronous: "FULL" });
  open.push(s);
  return s;
}

test("with synchronous FULL the connection stays FULL for every other write; the group commit alone relaxes it around its own transaction", async () => {
  const s = fullStore();
  const level = () => (s.db.query("PRAGMA synchronous").get() as { synchronous: number }).synchronous;
  expect(level()).toBe(2);
  await Promise.all([s.append([ev("a")]), s.append([ev("b")])]);
  expect(level()).toBe(2);
  s.putState("live", { x: 1 });
  expect(level()).toBe(2);
});

test("with synchronous FULL an event is visible to readers, listeners and the flush queue only once its append is answered, and answers come in commit order", async () => {
  const s = fullStore();
  const seen: string[] = [];
  const violations: string[] = [];
  const answered = new Set<number>();
  s.onAppend((events) => {
    for (const e of events) {
      seen.push(`listener ${e.seq}`);
      if (answered.has(e.seq)) violations.push(`seq ${e.seq} answered before its listener ran`);
    }
  });
  // Watch every turn of the loop: a committed row (in the table) must not be
  // readable through the store before the listener heard of it.
  let watching = true;
  const watch = () => {
    if (!watching) return;
    const visible = s.list("live", { sinceSeq: 0, limit: 1000 }).map((e) => e.seq);
    const queued = s.unflushed("live", 1000).map((e) => e.seq);
    for (const seq of [...visible, ...queued])
      if (!seen.includes(`listener ${seq}`)) violations.push(`seq ${seq} readable before its listener ran`);
    setImmediate(watch);
  };
  setImmediate(watch);
  const order: number[] = [];
  const waves = [];
  for (let wave = 0; wave < 20; wave++) {
    waves.push(
      ...Array.from({ length: 5 }, (_, i) =>
        s.append([ev(`w${wave}-${i}`)]).then(([r]) => {
          answered.add(r!.seq);
          order.push(r!.seq);
        }),
      ),
    );
    await new Promise((r) => setImmediate(r)); // the next wave commits while this one syncs
  }
  await Promise.all(waves);
  watching = false;
  expect(violations).toEqual([]);
  expect(order).toEqual([...order].sort((a, b) => a - b));
  expect(rowCount(s)).toBe(100);
  expect(s.lastSeq("live")).toBe(100);
});

test("a repeat of an event still being synced is answered only after that sync", async () => {
  const s = fullStore();
  let firstAnswered = false;
  const first = s.append([ev("a", { idempotency_key: "k" })]).then((r) => {
    firstAnswered = true;
    return r;
  });
  await new Promise((r) => setImmediate(r)); // committed, syncing
  const repeat = await s.append([ev("a", { idempotency_key: "k" })]);
  expect(firstAnswered).toBe(true);
  expect(repeat[0]).toMatchObject({ duplicate: true, seq: (await first)[0]!.seq });
});

test("close() answers the appends whose sync is still in flight, after one last sync", async () => {
  const s = openStore({ path: dir.file("zoe.db"), synchronous: "FULL" });
  const pending = [s.append([ev("a")]), s.append([ev("b")])];
  await new Promise((r) => setImmediate(r));
  s.close();
  expect((await Promise.all(pending)).map((r) => r[0]!.seq)).toEqual([1, 2]);
  const again = openStore({ path: dir.file("zoe.db") });
  open.push(again);
  expect(again.list("live", { sinceSeq: 0, limit: 10 }).map((e) => e.body)).toEqual(["a", "b"]);
});

test("a WAL that cannot be synced fails the append with 503 and every later one, and readers never see the unsynced event", async () => {
  const s = fullStore();
  // The WAL is removed under the open database: SQLite keeps writing to the
  // unlinked file, and the sync (which opens it by name) cannot reach it.
  rmSync(dir.file("zoe.db-wal"), { force: true });
  const failed = await s.append([ev("lost")]).catch((e: unknown) => e);
  expect(failed).toBeInstanceOf(StoreUnavailableError);
  expect((failed as Error).message).toMatch(/syncing the WAL to disk failed .*restart the service/);
  expect(s.list("live", { sinceSeq: 0, limit: 10 })).toEqual([]);
  expect(s.lastSeq("live")).toBe(0);
  expect(await s.append([ev("later")]).catch((e: unknown) => e)).toBeInstanceOf(StoreUnavailableError);
});

test("WalSync groups the callers that arrive during a sync into the next one", async () => {
  const path = dir.file("plain");
  await Bun.write(`${path}-wal`, "x");
  const sync = new WalSync(path);
  const calls: string[] = [];
  const done = (name: string) =>
    new Promise<void>((resolve) => sync.after((error) => (calls.push(`${name}:${error?.message ?? "ok"}`), resolve())));
  const a = done("a");
  expect(sync.idle()).toBe(false);
  const b = done("b");
  const c = done("c");
  await Promise.all([a, b, c]);
  expect(calls).toEqual(["a:ok", "b:ok", "c:ok"]);
  expect(sync.idle()).toBe(true);
  sync.close();
  const afterClose = await new Promise<Error | null>((resolve) => sync.after(resolve));
  expect(afterClose?.message).toMatch(/store is closed/);
});

test("a lone append syncs the WAL on the loop without the thread pool; appends that arrive together share one pool sync", async () => {
  const s = fullStore();
  const calls: string[] = [];
  const proto = WalSync.prototype as unknown as Record<string, (...args: unknown[]) => unknown>;
  const original = { after: proto.after!, syncNow: proto.syncNow! };
  proto.after = function (this: unknown, ...args: unknown[]) {
    calls.push("after");
    return original.after.apply(this, args);
  };
  proto.syncNow = function (this: unknown, ...args: unknown[]) {
    calls.push("syncNow");
    return original.syncNow.apply(this, args);
  };
  try {
    await s.append([ev("alone")]);
    expect(calls).toEqual(["syncNow"]);
    calls.length = 0;
    await Promise.all([s.append([ev("b")]), s.append([ev("c")]), s.append([ev("d")])]);
    expect(calls).toEqual(["after"]);
  } finally {
    proto.after = original.after;
    proto.syncNow = original.syncNow;
  }
  // Both paths answered only what is on disk: a reopen sees every event.
  s.close();
  open.splice(open.indexOf(s), 1);
  const again = openStore({ path: dir.file("zoe.db") });
  open.push(again);
  expect(again.list("live", { sinceSeq: 0, limit: 10 }).map((e) => e.body)).toEqual(["alone", "b", "c", "d"]);
});
