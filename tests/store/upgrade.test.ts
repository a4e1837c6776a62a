// A store file made by the version before store identities (schema 3, seqs
// from 1) opened by this one: it keeps its events and its flush queue, gets a
// store id and its old seqs as one recorded range, and its next start begins
// a new range above them.
import { afterEach, expect, test } from "bun:test";
import { manualClock } from "../../src/lib/clock.ts";
import { readMigrations } from "../../src/store/migrate.ts";
import { writeSchema3Store } from "../helpers/old-store.ts";
import { rangeFloor } from "../../src/store/ranges.ts";
import { type EventStore, openStore } from "../../src/store/store.ts";
import { tempDir } from "../helpers/tmp.ts";

const dirs: ReturnType<typeof tempDir>[] = [];
const stores: EventStore[] = [];
afterEach(() => {
  for (const s of stores.splice(0)) s.close();
  for (const d of dirs.splice(0)) d.cleanup();
});

/** Schema 3 as the previous release made it, with 5 live events (2 flushed) and 2 paper ones. */
function storeOfSchema3(path: string): void {
  writeSchema3Store(path, [
    { mode: "live", seq: 1, flushed: true },
    { mode: "live", seq: 2, flushed: true },
    { mode: "live", seq: 3, flushed: false },
    { mode: "live", seq: 4, flushed: false },
    { mode: "live", seq: 5, flushed: false },
    { mode: "paper", seq: 1, flushed: false },
    { mode: "paper", seq: 2, flushed: false },
  ]);
}

test("a store made before store identities upgrades in place: events kept, a store id, its old seqs one range, then a new range", async () => {
  const dir = tempDir("zoe-upgrade-");
  dirs.push(dir);
  const path = dir.file("zoe.db");
  storeOfSchema3(path);

  const at = Date.parse("2026-12-07T16:00:00Z");
  const clock = manualClock(at);
  const store = openStore({ path, clock, groupCommit: false, seqFloor: () => rangeFloor(clock.now()) });
  stores.push(store);
  expect((store.db.query("PRAGMA user_version").get() as { user_version: number }).user_version).toBe(
    readMigrations().length,
  );
  expect(store.storeId).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  expect(store.createdAt).toBe("2026-11-30T12:00:00.000Z");
  expect(store.list("live", { sinceSeq: 0, limit: 10 }).map((e) => e.seq)).toEqual([1, 2, 3, 4, 5]);
  expect(store.list("paper", { sinceSeq: 0, limit: 10 }).map((e) => e.seq)).toEqual([1, 2]);
  expect(store.backlog("live")).toBe(3);
  expect(store.unflushed("live", 10).map((e) => e.seq)).toEqual([3, 4, 5]);
  expect(store.seqRanges("live")).toEqual([
    { mode: "live", start_seq: 1, started_at: "2026-11-30T12:00:00.000Z", store_id: store.storeId },
  ]);

  const [next] = await store.append([{ mode: "live", source: "new", type: "ORDER", subtype: "TICK", body: "after" }]);
  expect(next!.seq).toBe(at * 1000);
  expect(store.seqRanges("live").map((r) => r.start_seq)).toEqual([at * 1000, 1]);
  expect(store.unflushed("live", 10).map((e) => e.seq)).toEqual([3, 4, 5, at * 1000]);
});

test("two stores get different ids", () => {
  const a = tempDir("zoe-upgrade-");
  const b = tempDir("zoe-upgrade-");
  dirs.push(a, b);
  const s1 = openStore({ path: a.file("zoe.db") });
  const s2 = openStore({ path: b.file("zoe.db") });
  stores.push(s1, s2);
  expect(s1.storeId).not.toBe(s2.storeId);
});
