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
