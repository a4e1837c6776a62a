// Applies sql/local/NNN_*.sql in order, each in its own transaction, and
// records the version reached in PRAGMA user_version. A crash mid-migration
// rolls that migration back whole, so the next start simply retries it.
import type { Database } from "bun:sqlite";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { StartupError } from "../domain/errors.ts";

export const LOCAL_MIGRATIONS_DIR = join(import.meta.dir, "..", "..", "sql", "local");

export interface Migration {
  version: number;
  name: string;
  sql: string;
}

export function readMigrations(dir = LOCAL_MIGRATIONS_DIR): Migration[] {
  return readdirSync(dir)
    .filter((f) => /^\d{3}_.+\.sql$/.test(f))
    .sort()
    .map((f, i) => {
      const version = Number(f.slice(0, 3));
      if (version !== i + 1)
        throw new StartupError(
          "bad_migrations",
          `Migration ${f} in ${dir} is out of sequence: expected version ${i + 1}`,
        );
      return { version, name: f, sql: readFileSync(join(dir, f), "utf8") };
    });
}

/** Brings `db` up to the newest migration; returns the version reached. */
export function migrate(db: Database, migrations: Migration[] = readMigrations()): number {
  const current = (db.query("PRAGMA user_version").get() as { user_version: number }).user_version;
  const newest = migrations.at(-1)?.version ?? 0;
  if (current > newest) {
    throw new StartupError(
      "db_too_new",
      `Database schema version ${current} is newer than this build knows (${newest}); run a newer zoe-local`,
    );
  }
  for (const m of migrations) {
    if (m.version <= current) continue;
    db.transaction(() => {
      db.run(m.sql);
      db.run(`PRAGMA user_version = ${m.version}`);
    }).immediate();
  }
  return Math.max(current, newest);
}
