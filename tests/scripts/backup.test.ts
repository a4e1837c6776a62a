// scripts/backup.ts against the real service while it takes writes.
import { Database } from "bun:sqlite";
import { afterEach, expect, test } from "bun:test";
import { readdirSync } from "node:fs";
import { join } from "node:path";
import { backupDatabase, USAGE } from "../../scripts/backup.ts";
import { openStore } from "../../src/store/store.ts";
import { type ServiceProcess, startService } from "../helpers/service.ts";
import { tempDir } from "../helpers/tmp.ts";

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

test("backs up a running service's database while it takes writes: a consistent, gapless copy holding every event acknowledged before it", async () => {
  const dir = tempDir("zoe-backup-");
  cleanups.push(() => dir.cleanup());
  const svc: ServiceProcess = await startService({ dbPath: dir.file("zoe.db") });
  cleanups.push(() => (svc.proc.exitCode === null ? svc.kill("SIGKILL") : undefined));
  let acked = 0;
  let stop = false;
  const writer = (async () => {
    for (let i = 0; !stop; i++) {
      const events = Array.from({ length: 20 }, (_, k) => ({
        mode: "live",
        source: "backup-test",
        type: "T",
        subtype: "TICK",
        body: `e${i}-${k}`,
      }));
      const res = await fetch(`${svc.url}/local/events`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify(events),
      });
      expect(res.status).toBe(201);
      acked += 20;
    }
  })();
  while (acked < 2_000) await Bun.sleep(10);
  const ackedBefore = acked;
  const result = backupDatabase(dir.file("zoe.db"), dir.file("backup.db"));
  // The CLI prints one summary line and refuses to overwrite.
  const cli = Bun.spawnSync([
    "bun",
    join(import.meta.dir, "..", "..", "scripts", "backup.ts"),
    dir.file("zoe.db"),
    dir.file("backup.db"),
  ]);
  expect(cli.exitCode).toBe(1);
  expect(cli.stderr.toString()).toContain("exists");
  stop = true;
  await writer;

  expect(result.events).toBeGreaterThanOrEqual(ackedBefore);
  const copy = new Database(dir.file("backup.db"), { readonly: true });
  try {
    // One start of the store: one seq range, gapless from its first seq.
    const [range] = copy.query("SELECT start_seq FROM local_seq_ranges WHERE mode = 'live'").all() as {
      start_seq: number;
    }[];
    expect(result.maxSeq.live).toBe(range!.start_seq + result.events - 1);
    const seqs = (
      copy.query("SELECT seq FROM local_events WHERE mode = 'live' ORDER BY seq").all() as { seq: number }[]
    ).map((r) => r.seq);
    expect(seqs).toEqual(Array.from({ length: seqs.length }, (_, i) => range!.start_seq + i));
    expect((copy.query("PRAGMA journal_mode").get() as { journal_mode: string }).journal_mode).toBe("delete");
  } finally {
    copy.close();
  }
  // The service is unharmed and its own database still counts on.
  expect((await fetch(`${svc.url}/health`)).status).toBe(200);
}, 60_000);

const BACKUP = join(import.meta.dir, "..", "..", "scripts", "backup.ts");

test("bun scripts/backup.ts with no arguments prints its usage and exits 2, backing up nothing (not even ./data/zoe-local.db)", () => {
  const dir = tempDir("zoe-backup-usage-");
  cleanups.push(() => dir.cleanup());
  // A database where the old default looked: it must not be touched.
  openStore({ path: join(dir.path, "data", "zoe-local.db") }).close();
  const before = readdirSync(join(dir.path, "data")).sort();
  const cli = Bun.spawnSync(["bun", BACKUP], { cwd: dir.path, stdout: "pipe", stderr: "pipe" });
  expect(cli.exitCode).toBe(2);
  expect(cli.stderr.toString().trim()).toBe(USAGE);
  expect(cli.stderr.toString()).toStartWith("usage: bun scripts/backup.ts <database> [<backup file>]");
  expect(cli.stdout.toString()).toBe("");
  expect(readdirSync(join(dir.path, "data")).sort()).toEqual(before);
  // Too many arguments or an option it does not know: the same.
  expect(Bun.spawnSync(["bun", BACKUP, "a.db", "b.db", "c.db"], { cwd: dir.path }).exitCode).toBe(2);
  expect(Bun.spawnSync(["bun", BACKUP, "--to", "b.db"], { cwd: dir.path }).exitCode).toBe(2);
  const help = Bun.spawnSync(["bun", BACKUP, "--help"], { cwd: dir.path, stdout: "pipe" });
  expect({ code: help.exitCode, out: help.stdout.toString().trim() }).toEqual({ code: 0, out: USAGE });
});

test("bun scripts/backup.ts <database> alone writes zoe-local-backup-<time>.db next to it", () => {
  const dir = tempDir("zoe-backup-default-");
  cleanups.push(() => dir.cleanup());
  openStore({ path: dir.file("zoe.db") }).close();
  const cli = Bun.spawnSync(["bun", BACKUP, dir.file("zoe.db")], { stdout: "pipe", stderr: "pipe" });
  expect({ code: cli.exitCode, err: cli.stderr.toString() }).toEqual({ code: 0, err: "" });
  const written = readdirSync(dir.path).filter((f) => f.startsWith("zoe-local-backup-"));
  expect(written).toHaveLength(1);
  expect(written[0]).toMatch(/^zoe-local-backup-\d{4}-\d\d-\d\dT\d\d-\d\d-\d\d-\d{3}Z\.db$/);
  expect(cli.stdout.toString()).toContain(`backup: ${dir.file(written[0]!)} (`);
});
