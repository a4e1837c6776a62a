// Online backup of the zoe-local database: `bun scripts/backup.ts <database> [<backup file>]`.
// VACUUM INTO writes a compact, consistent snapshot (one read transaction)
// while the service keeps writing through the WAL; the copy is then checked
// with PRAGMA integrity_check and its counts printed. Safe to run any time,
// e.g. from a systemd timer or cron as the service's user.
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
    const count = (where: string) => (copy.query(`SELECT COUNT(*) AS n FROM local_events WHERE ${where}`).get() as { n: number }).n;
    const seqs = copy.query("SELECT mode, MAX(seq) AS seq FROM local_events GROUP BY mode").all() as { mode: string; seq: number }[];
    result = { events: count("1"), unflushed: count("flushed = 0"), maxSeq: Object.fromEntries(seqs.map((r) => [r.mode, r.seq])) };
  } catch (error) {
    copy.close();
    rmSync(partial, { force: true });
    throw error;
  }
  copy.close();
  renameSync(partial, destPath);
  return { path: destPath, bytes: Bun.file(destPath).size, ...result };
}

export const USAGE = `usage: bun scripts/backup.ts <database> [<backup file>]

Copies a zoe-local database while the service runs (VACUUM INTO: one consistent
snapshot, integrity-checked, renamed into place only when sound; never overwrites).
  <database>     the service's ZOE_DB_PATH, e.g. /var/lib/zoe-local/zoe-local.db
  <backup file>  where to write the copy (must not exist);
                 default: zoe-local-backup-<UTC time>.db next to the database`;

/** The command line: usage (exit 2) unless a database is named, so a typo never backs up a guessed path. */
function main(args: string[]): number {
  if (args.includes("-h") || args.includes("--help")) {
    console.log(USAGE);
    return 0;
  }
  if (args.length < 1 || args.length > 2 || args.some((a) => a === "" || a.startsWith("-"))) {
    console.error(USAGE);
    return 2;
  }
  const db = args[0]!;
  const stamp = new Date().toISOString().replace(/[:.]/g, "-");
  const dest = args[1] ?? join(dirname(db), `zoe-local-backup-${stamp}.db`);
  try {
    const r = backupDatabase(db, dest);
    console.log(`backup: ${r.path} (${r.bytes} bytes, integrity ok): ${r.events} events, ${r.unflushed} unflushed, last seq ${JSON.stringify(r.maxSeq)}`);
    return 0;
  } catch (error) {
    console.error(`backup failed: ${(error as Error).message}`);
    return 1;
  }
}

if (import.meta.main) process.exit(main(process.argv.slice(2)));
