// Online backup of the zoe-local database: `bun scripts/backup.ts <database> [<backup file>]`.
// The same as `zoe-local backup --db <database>`; the logic is src/store/backup.ts
// (VACUUM INTO: consistent while the service writes, integrity-checked).
// Safe to run any time, e.g. from a systemd timer or cron as the service's user.
import { backupDatabase, defaultBackupPath } from "../src/store/backup.ts";

export { backupDatabase };
export type { BackupResult } from "../src/store/backup.ts";

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
  const dest = args[1] ?? defaultBackupPath(db);
  try {
    const r = backupDatabase(db, dest);
    console.log(
      `backup: ${r.path} (${r.bytes} bytes, integrity ok): ${r.events} events, ${r.unflushed} unflushed, last seq ${JSON.stringify(r.maxSeq)}`,
    );
    return 0;
  } catch (error) {
    console.error(`backup failed: ${(error as Error).message}`);
    return 1;
  }
}

if (import.meta.main) process.exit(main(process.argv.slice(2)));
