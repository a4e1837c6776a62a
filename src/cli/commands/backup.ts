// `zoe-local backup`: a consistent copy of the running service's database.
// The service says where its database is (GET /local/status); the copy is
// made here, in this process, with VACUUM INTO (src/store/backup.ts), so the
// service's event loop never waits for it. --db backs up a stopped service.
import { accessSync, constants } from "node:fs";
import { dirname } from "node:path";
import { backupDatabase, defaultBackupPath } from "../../store/backup.ts";
import type { Command } from "../context.ts";
import { CliError, EXIT, usage } from "../exit.ts";
import { bytesText, count } from "../format.ts";
import { fetchStatus } from "./status.ts";

function checkAccess(path: string, mode: number, what: string): void {
  try {
    accessSync(path, mode);
  } catch (error) {
    const code = (error as { code?: string }).code;
    if (code === "ENOENT")
      throw new CliError(
        EXIT.failed,
        `${what} ${path} does not exist on this machine: run zoe-local backup on the box the service runs on`,
      );
    throw new CliError(
      EXIT.failed,
      `cannot ${mode === constants.R_OK ? "read" : "write"} ${what} ${path}: ${code === "EACCES" ? "permission denied — run as the service's user, e.g. sudo -u zoe zoe-local backup" : (error as Error).message}`,
    );
  }
}

export const backupCommand: Command = {
  name: "backup",
  summary: "consistent copy of the database while the service runs",
  help: `Usage: zoe-local backup [DEST] [--db PATH]

Copies the database the running service uses (it tells where) while it keeps
taking events: one consistent snapshot (VACUUM INTO), integrity-checked,
renamed into place only when sound; never overwrites a file. Run it on the box,
as the service's user (sudo -u zoe zoe-local backup ...).

  DEST       the backup file (must not exist); default:
             zoe-local-backup-<UTC time>.db next to the database
  --db PATH  back up this database file instead of asking the service
             (works while the service is stopped)

Restore: stop the service, copy the backup over the database, delete its
-wal and -shm files, start the service.`,
  options: { db: { type: "string" } },
  async run(ctx, values, positionals) {
    if (positionals.length > 1) throw usage("backup takes at most one destination");
    let db = values.db as string | undefined;
    if (db === "") throw usage("--db needs a path");
    if (db === undefined) db = (await fetchStatus(ctx)).db.path;
    if (db === ":memory:")
      throw new CliError(EXIT.failed, "the service runs on an in-memory database: there is nothing on disk to back up");
    const dest = positionals[0] ?? defaultBackupPath(db);
    checkAccess(db, constants.R_OK, "the database");
    checkAccess(dirname(dest), constants.W_OK, "the backup folder");
    let r: ReturnType<typeof backupDatabase>;
    try {
      r = backupDatabase(db, dest);
    } catch (error) {
      throw new CliError(EXIT.failed, `backup failed: ${(error as Error).message}`, { cause: error });
    }
    if (ctx.json) ctx.io.out(JSON.stringify({ source: db, ...r }));
    else {
      const seqs =
        Object.entries(r.maxSeq)
          .map(([m, s]) => `${m} ${count(s)}`)
          .join(", ") || "none";
      ctx.io.out(
        `backup: ${r.path} (${bytesText(r.bytes)}, integrity ok): ${count(r.events)} events, ${count(r.unflushed)} unflushed, last seq ${seqs}`,
      );
    }
    return EXIT.ok;
  },
};
