import { Database } from "bun:sqlite";
import { afterEach, expect, test } from "bun:test";
import { existsSync, statSync } from "node:fs";
import { startCheckpointer } from "../../src/store/checkpointer.ts";
import { openStore } from "../../src/store/store.ts";
import { tempDir, waitFor } from "../helpers/tmp.ts";

const dirs: ReturnType<typeof tempDir>[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) d.cleanup();
});

function walDatabase() {
  const dir = tempDir("zoe-ckpt-");
  dirs.push(dir);
  const path = dir.file("x.db");
  const db = new Database(path, { create: true });
  db.run("PRAGMA journal_mode = WAL");
  // Only the checkpointer may move pages into the file in this test.
  db.run("PRAGMA wal_autocheckpoint = 0");
  db.run("CREATE TABLE t (v TEXT)");
  return { path, db };
}

const event = (i: number) => ({ mode: "paper" as const, source: "bot", type: "T", subtype: "S", body: `event ${i}` });

test("startCheckpointer() moves committed WAL pages into the database file while the writer never checkpoints", async () => {
  const { path, db } = walDatabase();
  const insert = db.query("INSERT INTO t (v) VALUES (?)");
  db.transaction(() => {
    for (let i = 0; i < 2000; i++) insert.run("x".repeat(200));
  })();
  const before = statSync(path).size;
  const checkpointer = startCheckpointer({ path, intervalMs: 5 });
  try {
    await waitFor(() => statSync(path).size > before + 100_000, 10_000, "pages backfilled into the database file");
  } finally {
    checkpointer.stop();
  }
  expect((db.query("SELECT COUNT(*) AS n FROM t").get() as { n: number }).n).toBe(2000);
  db.close();
});

test("the checkpointer waits for a checkpoint's worth of commits: 32 reported commits backfill at once, fewer wait", async () => {
  const { path, db } = walDatabase();
  const insert = db.query("INSERT INTO t (v) VALUES (?)");
  // A long cap: only the commit count may trigger the checkpoint here.
  const initial = statSync(path).size;
  db.transaction(() => {
    for (let i = 0; i < 50; i++) insert.run("x".repeat(200));
  })();
  const checkpointer = startCheckpointer({ path, intervalMs: 60_000 });
  try {
    // The first checkpoint runs at start; then the worker parks until a commit is reported.
    await waitFor(() => statSync(path).size > initial, 10_000, "the first checkpoint");
    const commit = () => {
      db.transaction(() => {
        for (let i = 0; i < 50; i++) insert.run("x".repeat(200));
      })();
      checkpointer.committed(50);
    };
    commit(); // wakes the parked worker, which now gathers
    const size = statSync(path).size;
    for (let i = 0; i < 10; i++) commit();
    await Bun.sleep(200);
    expect(statSync(path).size).toBe(size); // 11 commits, 550 events: not yet due
    for (let i = 0; i < 21; i++) commit(); // the 32nd commit
    await waitFor(() => statSync(path).size > size + 100_000, 10_000, "pages backfilled after 32 commits");
  } finally {
    checkpointer.stop();
  }
  db.close();
});

test("a single commit is checkpointed within intervalMs, and stop() ends a worker waiting for commits", async () => {
  const { path, db } = walDatabase();
  const initial = statSync(path).size;
  db.run("INSERT INTO t (v) VALUES ('first')");
  const checkpointer = startCheckpointer({ path, intervalMs: 50 });
  try {
    await waitFor(() => statSync(path).size > initial, 10_000, "the first checkpoint");
    const size = statSync(path).size;
    db.transaction(() => {
      const insert = db.query("INSERT INTO t (v) VALUES (?)");
      for (let i = 0; i < 500; i++) insert.run("x".repeat(200));
    })();
    checkpointer.committed(500);
    await waitFor(() => statSync(path).size > size + 50_000, 10_000, "the lone commit backfilled");
  } finally {
    const t0 = performance.now();
    checkpointer.stop();
    expect(performance.now() - t0).toBeLessThan(2500);
  }
  db.close();
});

test("stop() returns promptly even before the worker has started, and again when called twice", () => {
  const { path, db } = walDatabase();
  const checkpointer = startCheckpointer({ path, intervalMs: 5 });
  const t0 = performance.now();
  checkpointer.stop();
  checkpointer.stop();
  expect(performance.now() - t0).toBeLessThan(2500);
  db.close();
});

test("a store with a background checkpointer keeps seqs gapless, truncates the WAL on close and reopens", async () => {
  const dir = tempDir("zoe-ckpt-store-");
  dirs.push(dir);
  const path = dir.file("zoe.db");
  const store = openStore({ path, checkpointIntervalMs: 2 });
  const results = await Promise.all(Array.from({ length: 300 }, (_, i) => store.append([event(i)])));
  expect(results.map((r) => r[0]!.seq).sort((a, b) => a - b)).toEqual(Array.from({ length: 300 }, (_, i) => i + 1));
  store.close();
  // The worker's connection is closed before the final TRUNCATE checkpoint.
  expect(existsSync(`${path}-wal`) ? statSync(`${path}-wal`).size : 0).toBe(0);
  const again = openStore({ path, checkpointIntervalMs: 2 });
  try {
    expect(again.lastSeq("paper")).toBe(300);
    expect(again.list("paper", { sinceSeq: 0, limit: 1000 })).toHaveLength(300);
  } finally {
    again.close();
  }
});
