// Online backup of the zoe-local database. VACUUM INTO writes a compact,
// consistent snapshot (one read transaction) while the service keeps writing
// through the WAL; the copy is then checked with PRAGMA integrity_check and
// its counts read. Used by `zoe-local backup` and scripts/backup.ts: it opens
// the database read-only, in the caller's process, so the service's event
// loop never waits for it.
import { Database } from "bun:sqlite";
import { existsSync, renameSync, rmSync } from "node:fs";
import { dirname, join } from "node:path";

export interface BackupResult {
  path: string;
  bytes: number;
  events: number;
  unflushed: number;
  maxSeq: Record<string, number>;
}

export function backupDatabase(dbPath: string, destPath: string): BackupResult {
  if (!existsSync(dbPath)) throw new Error(`No database at ${dbPath}`);
  if (existsSync(destPath)) throw new Error(`${destPath} exists: VACUUM INTO will not overwrite it; pick another name`);
  // Written under a temporary name, renamed once verified: a half-written
  // file never looks like a backup.
  const partial = join(dirname(destPath), `.partial-${process.pid}-${Date.now()}.db`);
  const source = new Database(dbPath, { readonly: true });
  try {
    source.run("PRAGMA busy_timeout = 10000");
    source.query("VACUUM INTO ?").run(partial);
  } finally {
    source.close();
  }
  const copy = new Database(partial, { readonly: true });
  let result: Omit<BackupResult, "path" | "bytes">;
  try {
    const check = (copy.query("PRAGMA integrity_check").get() as { integrity_check: string }).integrity_check;
    if (check !== "ok") throw new Error(`The backup failed its integrity check: ${check}`);
    const count = (where: string) =>
      (copy.query(`SELECT COUNT(*) AS n FROM local_events WHERE ${where}`).get() as { n: number }).n;
    const seqs = copy.query("SELECT mode, MAX(seq) AS seq FROM local_events GROUP BY mode").all() as {
      mode: string;
      seq: number;
    }[];
    result = {
      events: count("1"),
      unflushed: count("flushed = 0"),
      maxSeq: Object.fromEntries(seqs.map((r) => [r.mode, r.seq])),
    };
  } catch (error) {
    copy.close();
    rmSync(partial, { force: true });
    throw error;
  }
  copy.close();
  renameSync(partial, destPath);
  return { path: destPath, bytes: Bun.file(destPath).size, ...result };
}

/** zoe-local-backup-<UTC time>.db next to the database. */
export function defaultBackupPath(dbPath: string, now = new Date()): string {
  return join(dirname(dbPath), `zoe-local-backup-${now.toISOString().replace(/[:.]/g, "-")}.db`);
}
