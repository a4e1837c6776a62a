import { Database } from "bun:sqlite";
import { afterEach, beforeEach, expect, test } from "bun:test";
import { writeFileSync } from "node:fs";
import { StartupError } from "../../src/domain/errors.ts";
import { type Migration, migrate, readMigrations } from "../../src/store/migrate.ts";
import { tempDir } from "../helpers/tmp.ts";

let dir: ReturnType<typeof tempDir>;
let db: Database;
beforeEach(() => {
  dir = tempDir("zoe-migrate-");
  db = new Database(dir.file("m.db"), { create: true });
});
afterEach(() => {
  db.close();
  dir.cleanup();
});

const version = () => (db.query("PRAGMA user_version").get() as { user_version: number }).user_version;
const tables = () =>
  (db.query("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name").all() as { name: string }[]).map(
    (t) => t.name,
  );

test("migrate() applies every sql/local migration in order and records the version in user_version", () => {
  const all = readMigrations();
  expect(all.map((m) => m.version)).toEqual(all.map((_, i) => i + 1));
  expect(migrate(db)).toBe(all.length);
  expect(version()).toBe(all.length);
  expect(tables()).toEqual(expect.arrayContaining(["local_events", "local_flush_log", "local_state_snapshots"]));
});

test("migrate() on an up-to-date database changes nothing", () => {
  migrate(db);
  db.run("INSERT INTO local_flush_log (mode, count, last_seq, status) VALUES ('live', 1, 1, 'ok')");
  const before = tables();
  expect(migrate(db)).toBe(version());
  expect(tables()).toEqual(before);
  expect((db.query("SELECT COUNT(*) AS n FROM local_flush_log").get() as { n: number }).n).toBe(1);
});

test("migrate() applies only the migrations newer than the recorded version", () => {
  const ms: Migration[] = [
    { version: 1, name: "001_a.sql", sql: "CREATE TABLE a (x INTEGER);" },
    { version: 2, name: "002_b.sql", sql: "CREATE TABLE b (x INTEGER); CREATE TABLE c (x INTEGER);" },
  ];
  expect(migrate(db, ms.slice(0, 1))).toBe(1);
  expect(migrate(db, ms)).toBe(2);
  expect(tables()).toEqual(["a", "b", "c"]);
});

test("a failing migration rolls back whole and leaves the version where it was", () => {
  const good: Migration = { version: 1, name: "001_a.sql", sql: "CREATE TABLE a (x INTEGER);" };
  const bad: Migration = {
    version: 2,
    name: "002_b.sql",
    sql: "CREATE TABLE b (x INTEGER); CREATE TABLE a (x INTEGER);",
  };
  expect(() => migrate(db, [good, bad])).toThrow(/already exists/);
  expect(version()).toBe(1);
  expect(tables()).toEqual(["a"]);
  const fixed: Migration = { ...bad, sql: "CREATE TABLE b (x INTEGER);" };
  expect(migrate(db, [good, fixed])).toBe(2);
  expect(tables()).toEqual(["a", "b"]);
});

test("a database newer than this build is refused with a clear StartupError", () => {
  db.run("PRAGMA user_version = 99");
  let error: unknown;
  try {
    migrate(db);
  } catch (e) {
    error = e;
  }
  expect(error).toBeInstanceOf(StartupError);
  expect((error as StartupError).code).toBe("db_too_new");
  expect((error as Error).message).toContain("version 99 is newer");
});

test("readMigrations() refuses files out of sequence and ignores other files", () => {
  const sqlDir = dir.file("");
  writeFileSync(dir.file("001_first.sql"), "SELECT 1;");
  writeFileSync(dir.file("README.md"), "not a migration");
  writeFileSync(dir.file("notes.sql"), "SELECT 2;");
  expect(readMigrations(sqlDir).map((m) => m.name)).toEqual(["001_first.sql"]);
  writeFileSync(dir.file("003_third.sql"), "SELECT 3;");
  expect(() => readMigrations(sqlDir)).toThrow(/003_third\.sql .* out of sequence: expected version 2/);
});
