// Disk full: the database lives on a tiny tmpfs (a real ENOSPC, no test hook).
// The bot posts padded events until the disk is full and ingest answers 503
// with Retry-After; the service is SIGKILLed while full and started again on
// the full disk; then the filesystem grows (mount -o remount) and the bot's
// pending requests go through. Nothing acknowledged may be lost. Two ways to
// fill: with the free-disk floor off, SQLite itself hits SQLITE_FULL; with the
// floor on, the service refuses before that.
//
// Mounting needs root (CAP_SYS_ADMIN); without it the tests are skipped with
// a note, as there is no other way to fill a real disk safely.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { spawnSync } from "bun";
import { mkdtempSync, rmdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { faultSeed, Ledger, seededRandom, startBot } from "../helpers/bot.ts";
import { checkInvariant, waitForDrain } from "../helpers/invariant.ts";
import { type ServiceProcess, startService } from "../helpers/service.ts";
import { startSupabaseStack, type SupabaseStack } from "../helpers/supabase-stack.ts";
import { waitFor } from "../helpers/tmp.ts";

const MiB = 1024 * 1024;

interface TinyDisk {
  path: string;
  resize(bytes: number): void;
  cleanup(): void;
}

function mountTmpfs(bytes: number): TinyDisk | null {
  const path = mkdtempSync(join(tmpdir(), "zoe-tinydisk-"));
  const mount = spawnSync(["mount", "-t", "tmpfs", "-o", `size=${bytes},mode=0700`, "tmpfs", path], { stderr: "pipe" });
  if (mount.exitCode !== 0) {
    rmdirSync(path);
    return null;
  }
  return {
    path,
    resize(n) {
      const r = spawnSync(["mount", "-o", `remount,size=${n}`, path], { stderr: "pipe" });
      if (r.exitCode !== 0) throw new Error(`remount ${path} to ${n} bytes failed: ${r.stderr.toString()}`);
    },
    cleanup() {
      spawnSync(["umount", "-l", path]);
      rmdirSync(path);
    },
  };
}

// Probe once: can this process mount a tmpfs?
const probe = mountTmpfs(MiB);
const canMount = probe !== null;
probe?.cleanup();
if (!canMount) console.log("disk-full tests skipped: mounting a tmpfs needs root (CAP_SYS_ADMIN)");

let stack: SupabaseStack;
beforeAll(async () => {
  if (canMount) stack = await startSupabaseStack();
}, 60_000);
afterAll(async () => {
  await stack?.stop();
});

const floors: { name: string; size: number; code: string; env: Record<string, string> }[] = [
  {
    name: "SQLite hits SQLITE_FULL (no free-disk floor)",
    size: 2 * MiB,
    code: "store_unavailable",
    env: { ZOE_MIN_FREE_DISK_BYTES: "0" },
  },
  // Free space is sampled once a second: the floor leaves room for seconds of this bot's writes (twice: WAL and database).
  {
    name: "the free-disk floor refuses first",
    size: 16 * MiB,
    code: "disk_low",
    env: { ZOE_MIN_FREE_DISK_BYTES: String(6 * MiB), ZOE_CRITICAL_RESERVE_BYTES: String(2 * MiB) },
  },
];

describe.skipIf(!canMount).each(floors)("disk full: $name", ({ name, size, code, env: limitEnv }) => {
  test("503 with Retry-After, a SIGKILL on the full disk, recovery when space returns; nothing acknowledged lost", async () => {
    const seed = faultSeed(`disk full (${name})`);
    const disk = mountTmpfs(size)!;
    const dbPath = join(disk.path, "zoe.db");
    const env: Record<string, string> = {
      SUPABASE_URL: stack.url,
      SUPABASE_SERVICE_ROLE_KEY: stack.serviceKey,
      ZOE_FLUSH_MARKET_HOURS: "false",
      ZOE_FLUSH_ACTIVE_MS: "100",
      ZOE_FLUSH_BACKOFF_MIN_MS: "50",
      ZOE_FLUSH_BACKOFF_MAX_MS: "500",
      ZOE_LOG_LEVEL: "error",
      ...limitEnv,
    };
    const ledger = new Ledger(`disk-${seed}-${process.pid}`);
    let svc: ServiceProcess | null = await startService({ dbPath, env });
    const bot = startBot({
      url: () => svc?.url ?? null,
      ledger,
      random: seededRandom(seed),
      workers: 3,
      paceMs: 5,
      maxBatch: 10,
      padding: 1500,
      criticalShare: 0.02,
    });
    const notes: string[] = [];
    try {
      await waitFor(() => ledger.unavailable.length >= 10, 30_000, "503s from a full disk");
      const acksWhenFull = ledger.acks.length;
      expect(ledger.unavailable.every((r) => r.retryAfter !== null && Number(r.retryAfter) > 0)).toBe(true);
      expect([...new Set(ledger.unavailable.map((r) => r.code))]).toEqual([code]);
      // Reads still work on a full disk.
      expect((await fetch(`${svc.url}/local/events?mode=live&limit=5`)).status).toBe(200);
      notes.push(
        `${acksWhenFull} acknowledged before the disk was full, Retry-After ${[...new Set(ledger.unavailable.map((r) => r.retryAfter))].join("/")} s`,
      );

      // Crash on the full disk, and start again while it is still full.
      await svc.kill("SIGKILL");
      svc = null;
      try {
        svc = await startService({ dbPath, env, timeoutMs: 10_000 });
        notes.push("restarted on the full disk");
        await waitFor(() => ledger.unavailable.length >= 15, 10_000, "more 503s after the restart");
        await svc.kill("SIGKILL");
        svc = null;
      } catch (error) {
        notes.push(
          `refused to start on the full disk: ${(error as Error).message.split("\n").find((l) => l.includes("refusing")) ?? "no listen"}`,
        );
      }

      disk.resize(64 * MiB);
      svc = await startService({ dbPath, env });
      await waitFor(() => ledger.acks.length >= acksWhenFull + 100, 30_000, "acknowledgements after space returned");
      bot.stopProducing();
      await bot.settled();
      await waitForDrain(svc.url, 30_000);
      expect(await svc.kill("SIGTERM")).toBe(0);
      svc = null;
      const report = await checkInvariant({ ledger, dbPath, sql: stack.sql });
      console.log(
        `disk full (${name}): ${notes.join("; ")}; ${ledger.unavailable.length} answers 503; ${report.acked} acknowledged, ${report.remote} in Postgres`,
      );
    } finally {
      await bot.abort();
      if (svc) await svc.kill("SIGKILL");
      disk.cleanup();
    }
  }, 120_000);
});
