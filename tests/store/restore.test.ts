// restoreFromRemote() over a source that serves Supabase's rows from memory:
// the keyset paging on seq (pages that end inside a run of one seq, as old
// projects hold several events with one seq), what a rerun and --force do,
// and the refusal of a store with events of its own.
import { Database } from "bun:sqlite";
import { afterEach, describe, expect, test } from "bun:test";
import type { Mode, StoredEvent } from "../../supabase/functions/_shared/event-schema.ts";
import { type RestoreSource, restoreFromRemote, StoreNotEmptyError } from "../../src/store/restore.ts";
import { openStore } from "../../src/store/store.ts";
import { tempDir } from "../helpers/tmp.ts";

const dirs: ReturnType<typeof tempDir>[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) d.cleanup();
});
const dbPath = () => {
  const d = tempDir("zoe-restore-unit-");
  dirs.push(d);
  return d.file("zoe.db");
};

const remote = (mode: Mode, seq: number, n: number): StoredEvent => ({
  id: `00000000-0000-4000-8000-${String(n).padStart(12, "0")}`,
  mode,
  ts: "2026-12-07T10:00:00.000Z",
  seq,
  source: "bot",
  type: "MARKET",
  subtype: "TICK",
  symbol: null,
  severity: "info",
  body: `remote ${n}`,
  meta: { n },
  idempotency_key: `k-${n}`,
});

function memorySource(
  rows: StoredEvent[],
  state: { ts: string; state: unknown } | null = null,
): RestoreSource & { pages: number } {
  const sorted = [...rows].sort((a, b) => a.seq - b.seq || a.id.localeCompare(b.id));
  const source = {
    pages: 0,
    count: async (mode: Mode) => sorted.filter((e) => e.mode === mode).length,
    async page(mode: Mode, sinceIso: string, fromSeq: number, limit: number) {
      source.pages++;
      return sorted.filter((e) => e.mode === mode && e.ts >= sinceIso && e.seq >= fromSeq).slice(0, limit);
    },
    maxSeq: async (mode: Mode) => sorted.filter((e) => e.mode === mode).at(-1)?.seq ?? null,
    latestState: async (mode: Mode) => (mode === "live" ? state : null),
  };
  return source;
}

const localSeqs = (path: string) => {
  const db = new Database(path, { readonly: true });
  const rows = db.query("SELECT seq, body FROM local_events ORDER BY mode, seq").all();
  db.close();
  return rows;
};

describe("restoreFromRemote()", () => {
  test("pages on seq without skipping or repeating rows when a page ends inside a run of one seq", async () => {
    const path = dbPath();
    // seqs 1, 2, 2, 2, 3, 4: three rows share seq 2 (written before seqs were unique).
    const rows = [
      remote("live", 1, 1),
      remote("live", 2, 2),
      remote("live", 2, 3),
      remote("live", 2, 4),
      remote("live", 3, 5),
      remote("live", 4, 6),
    ];
    const report = await restoreFromRemote({
      path,
      source: memorySource(rows),
      since: new Date(0),
      modes: ["live"],
      pageSize: 2,
    });
    const live = report.modes[0]!;
    expect([live.read, live.inserted, live.present]).toEqual([6, 4, 0]);
    // The store keeps seqs unique: the first event at seq 2 stays, the other two are reported.
    expect(live.conflicts.map((c) => [c.id.slice(-1), c.reason])).toEqual([
      ["3", `seq 2 is taken by local event ${rows[1]!.id}`],
      ["4", `seq 2 is taken by local event ${rows[1]!.id}`],
    ]);
    expect(localSeqs(path)).toEqual([
      { seq: 1, body: "remote 1" },
      { seq: 2, body: "remote 2" },
      { seq: 3, body: "remote 5" },
      { seq: 4, body: "remote 6" },
    ]);
    expect(live.localMaxSeq).toBe(4);
  });

  test("a second run (with force) changes nothing; the state snapshot is written once", async () => {
    const path = dbPath();
    const rows = Array.from({ length: 25 }, (_, i) => remote("live", i + 1, i + 1));
    const state = { ts: "2026-12-07T10:00:01.000Z", state: { cash: 1.5 } };
    const first = await restoreFromRemote({
      path,
      source: memorySource(rows, state),
      since: new Date(0),
      pageSize: 10,
    });
    expect(first.modes.map((m) => [m.mode, m.inserted, m.state])).toEqual([
      ["paper", 0, false],
      ["live", 25, true],
    ]);
    await expect(restoreFromRemote({ path, source: memorySource(rows, state), since: new Date(0) })).rejects.toThrow(
      "a restore cut short? Run it again with --force",
    );
    const again = await restoreFromRemote({ path, source: memorySource(rows, state), since: new Date(0), force: true });
    expect(again.modes.map((m) => [m.mode, m.inserted, m.present, m.state])).toEqual([
      ["paper", 0, 0, false],
      ["live", 0, 25, false],
    ]);
  });

  test("refuses a store with events of its own unless forced, and then leaves its events as they are", async () => {
    const path = dbPath();
    const store = openStore({ path });
    await store.append([{ mode: "live", source: "bot", type: "MARKET", subtype: "TICK", body: "local" }]);
    store.close();
    const source = memorySource([remote("live", 1, 1), remote("live", 2, 2)]);
    const refused = await restoreFromRemote({ path, source, since: new Date(0) }).catch((e) => e);
    expect(refused).toBeInstanceOf(StoreNotEmptyError);
    expect((refused as Error).message).toContain("Restore into a new file (ZOE_DB_PATH), or pass --force");
    const forced = await restoreFromRemote({ path, source, since: new Date(0), force: true });
    expect(forced.modes[1]!.conflicts.map((c) => c.seq)).toEqual([1]);
    expect(localSeqs(path)).toEqual([
      { seq: 1, body: "local" },
      { seq: 2, body: "remote 2" },
    ]);
  });

  test("stops between pages when its signal is aborted", async () => {
    const path = dbPath();
    const stop = new AbortController();
    const rows = Array.from({ length: 30 }, (_, i) => remote("paper", i + 1, i + 1));
    const run = restoreFromRemote({
      path,
      source: memorySource(rows),
      since: new Date(0),
      pageSize: 10,
      signal: stop.signal,
      onProgress: (p) => {
        if (p.read >= 10) stop.abort(new Error("stopped by the test"));
      },
    });
    await expect(run).rejects.toThrow("stopped by the test");
    expect(localSeqs(path).length).toBe(10);
  });
});
