// Kill loop: the real service is SIGKILLed again and again while a bot posts
// (singles and batches, retrying with its idempotency keys) and the flusher
// ships to the real remote through a loopback proxy. Kills land at random
// moments, during first-start migrations, during start-up recovery, while a
// flush request is on its way, right after the remote committed a batch whose
// answer the service never gets, and during checkpoints (the background
// checkpointer runs every 1–5 ms), and during a graceful shutdown's last
// flush (SIGTERM, then SIGKILL). After the last round: restart, let the bot
// get every pending request acknowledged, drain, SIGTERM, check the invariant.
//
// FAULT_ROUNDS (default 15 here; `bun run test:faults` runs 40) sets the
// number of rounds, FAULT_SEED replays a run.
import { afterAll, beforeAll, expect, test } from "bun:test";
import { Database } from "bun:sqlite";
import { copyFileSync, existsSync, statSync } from "node:fs";
import { join } from "node:path";
import { faultSeed, Ledger, seededRandom, startBot } from "../helpers/bot.ts";
import { type FaultProxy, startFaultProxy } from "../helpers/fault-proxy.ts";
import { checkInvariant, waitForDrain } from "../helpers/invariant.ts";
import { type ServiceProcess, startService } from "../helpers/service.ts";
import { startSupabaseStack, type SupabaseStack } from "../helpers/supabase-stack.ts";
import { tempDir } from "../helpers/tmp.ts";
import { readMigrations } from "../../src/store/migrate.ts";

const NEWEST_SCHEMA = readMigrations().at(-1)!.version;

const ROUNDS = Math.max(1, Number(process.env.FAULT_ROUNDS ?? 15));
const FIRST_START_KILLS = Math.max(3, Math.min(8, Math.round(ROUNDS / 5)));
const MAIN = join(import.meta.dir, "..", "..", "src", "main.ts");

let stack: SupabaseStack;
let proxy: FaultProxy;

beforeAll(async () => {
  stack = await startSupabaseStack();
  proxy = startFaultProxy({ upstream: stack.url });
}, 60_000);

afterAll(async () => {
  proxy?.stop();
  await stack?.stop();
});

type KillKind = "random" | "startup" | "flush-in-flight" | "after-remote-commit" | "burst" | "during-shutdown";
const KINDS: KillKind[] = ["random", "startup", "flush-in-flight", "after-remote-commit", "burst", "during-shutdown"];

function env(rng: () => number): Record<string, string> {
  const pick = <T>(xs: T[]) => xs[Math.floor(rng() * xs.length)]!;
  return {
    SUPABASE_URL: proxy.url,
    SUPABASE_SERVICE_ROLE_KEY: stack.serviceKey,
    ZOE_FLUSH_SINK: pick(["edge", "direct"]),
    ZOE_FLUSH_MARKET_HOURS: "false",
    ZOE_FLUSH_ACTIVE_MS: pick(["20", "100"]),
    ZOE_FLUSH_OFFHOURS_MS: "100",
    ZOE_FLUSH_BATCH_SIZE: pick(["7", "50", "500"]),
    ZOE_FLUSH_BACKOFF_MIN_MS: "20",
    ZOE_FLUSH_BACKOFF_MAX_MS: "200",
    ZOE_FLUSH_TIMEOUT_MS: "3000",
    ZOE_CHECKPOINT_INTERVAL_MS: pick(["1", "5", "0"]),
    ZOE_SYNCHRONOUS: pick(["NORMAL", "FULL"]),
    ZOE_GROUP_COMMIT: pick(["true", "true", "false"]),
  };
}

/** The service as a bare child process, not waited on: for kills before it listens. */
function spawnRaw(dbPath: string, extra: Record<string, string>) {
  return Bun.spawn(["bun", MAIN], {
    env: {
      PATH: process.env.PATH ?? "",
      HOME: process.env.HOME ?? "/tmp",
      HOST: "127.0.0.1",
      PORT: "0",
      ZOE_DB_PATH: dbPath,
      ZOE_LOG_LEVEL: "error",
      ...extra,
    },
    stdin: "ignore",
    stdout: "ignore",
    stderr: "ignore",
  });
}

/** Schema version a crashed first start left behind, read from a copy so the service itself recovers the original. */
function versionLeft(dbPath: string, scratch: string): number | "no file" {
  if (!existsSync(dbPath)) return "no file";
  const copy = join(scratch, `copy-${Math.random().toString(36).slice(2)}.db`);
  copyFileSync(dbPath, copy);
  if (existsSync(`${dbPath}-wal`)) copyFileSync(`${dbPath}-wal`, `${copy}-wal`);
  const db = new Database(copy);
  try {
    return (db.query("PRAGMA user_version").get() as { user_version: number }).user_version;
  } finally {
    db.close();
  }
}

function walBytes(dbPath: string): number {
  try {
    return statSync(`${dbPath}-wal`).size;
  } catch {
    return 0;
  }
}

const isFlush = (path: string) => path.startsWith("/functions/v1/") || path.startsWith("/rest/v1/zoe_events");

test(
  `kill loop: ${ROUNDS} SIGKILL rounds while a bot posts and the flusher flushes; nothing acknowledged is lost or doubled`,
  async () => {
    const started = performance.now();
    const seed = faultSeed("kill loop");
    const rng = seededRandom(seed);
    const dir = tempDir("zoe-kill-");
    const scratch = tempDir("zoe-kill-copies-");
    const dbPath = dir.file("zoe.db");
    const ledger = new Ledger(`kill-${seed}-${process.pid}`);
    let current: ServiceProcess | null = null;
    const kills: Record<string, number> = {};
    const firstStart: (number | string)[] = [];

    // First starts on fresh databases, killed while the schema is being created;
    // each must then start cleanly. The first of them is the kill loop's own database.
    for (let i = 0; i < FIRST_START_KILLS; i++) {
      const path = i === 0 ? dbPath : scratch.file(`first-${i}.db`);
      const proc = spawnRaw(path, env(rng));
      const deadline = performance.now() + 5_000;
      // Spin (not sleep) so the kill lands within microseconds of the chosen
      // moment: the first frames reaching the WAL are the first migration committing.
      while (walBytes(path) === 0 && performance.now() < deadline && proc.exitCode === null) {}
      const until = performance.now() + rng() * 2;
      while (performance.now() < until) {}
      proc.kill("SIGKILL");
      await proc.exited;
      firstStart.push(versionLeft(path, scratch.path));
      const svc = await startService({ dbPath: path, env: { ZOE_LOG_LEVEL: "error" } });
      // The kill loop's own database must hold only the bot's events: probe it with a read.
      const res =
        i === 0
          ? await fetch(`${svc.url}/health`)
          : await fetch(`${svc.url}/local/events`, {
              method: "POST",
              headers: { "content-type": "application/json" },
              body: JSON.stringify({
                mode: "live",
                source: "first-start",
                type: "ORDER",
                subtype: "TICK",
                body: "after a crashed first start",
              }),
            });
      expect(res.status).toBe(i === 0 ? 200 : 201);
      expect(await svc.kill("SIGTERM")).toBe(0);
      const db = new Database(path);
      expect([db.query("PRAGMA user_version").get(), db.query("PRAGMA integrity_check").get()]).toEqual([
        { user_version: NEWEST_SCHEMA },
        { integrity_check: "ok" },
      ]);
      db.close();
    }

    const bot = startBot({
      url: () => current?.url ?? null,
      ledger,
      random: seededRandom(seed ^ 0x9e3779b9),
      workers: 4,
      maxBatch: 20,
      paceMs: 30,
      replayShare: 0.03,
      criticalShare: 0.05,
    });
    try {
      for (let round = 0; round < ROUNDS; round++) {
        const kind = KINDS[Math.floor(rng() * KINDS.length)]!;
        const roundEnv = env(rng);
        kills[kind] = (kills[kind] ?? 0) + 1;
        if (kind === "startup") {
          // Killed while it opens the database and replays the previous run's WAL.
          const proc = spawnRaw(dbPath, roundEnv);
          await Bun.sleep(rng() * 250);
          proc.kill("SIGKILL");
          await proc.exited;
          continue;
        }
        const svc = await startService({ dbPath, env: { ...roundEnv, ZOE_LOG_LEVEL: "error" } });
        current = svc;
        let fired = false;
        let killed!: () => void;
        const dead = new Promise<void>((resolve) => (killed = resolve));
        const killNow = () => {
          if (fired) return;
          fired = true;
          current = null;
          svc.proc.kill("SIGKILL");
          killed();
        };
        // Hooks are armed a little later, so not every kill hits the start-up flush.
        if (kind === "flush-in-flight" || kind === "after-remote-commit") await Bun.sleep(rng() * 300);
        if (kind === "flush-in-flight") {
          // The batch is on its way: the service dies, the remote still commits it.
          proxy.setPlan((req) => {
            if (isFlush(req.path)) killNow();
            return { kind: "forward" };
          });
        } else if (kind === "after-remote-commit") {
          // The remote committed; the service dies before it hears so.
          proxy.setAfterUpstream(async (req) => {
            if (!isFlush(req.path) || fired) return;
            killNow();
            await svc.proc.exited;
          });
        }
        const wait = kind === "burst" ? 50 + rng() * 300 : 50 + rng() * 700;
        if (kind === "burst") {
          // Large batches in flight at the moment of the kill.
          const burst = Array.from({ length: 8 }, (_, w) =>
            fetch(`${svc.url}/local/events`, {
              method: "POST",
              headers: { "content-type": "application/json" },
              body: JSON.stringify(
                Array.from({ length: 200 }, (_, i) => {
                  const key = `${ledger.source}-burst-${round}-${w}-${i}`;
                  ledger.intents.set(key, { key, mode: i % 3 ? "live" : "paper", subtype: "TICK", body: key });
                  return {
                    mode: i % 3 ? "live" : "paper",
                    source: ledger.source,
                    type: "ORDER",
                    subtype: "TICK",
                    body: key,
                    idempotency_key: key,
                  };
                }),
              ),
            })
              .then(async (res) => {
                if (res.status !== 201) return;
                for (const e of (
                  (await res.json()) as {
                    events: { id: string; seq: number; idempotency_key: string; duplicate: boolean }[];
                  }
                ).events) {
                  const intent = ledger.intents.get(e.idempotency_key)!;
                  ledger.acks.push({
                    key: e.idempotency_key,
                    id: e.id,
                    seq: e.seq,
                    mode: intent.mode,
                    duplicate: e.duplicate,
                  });
                }
              })
              .catch(() => {}),
          );
          await Bun.sleep(wait);
          killNow();
          await Promise.all(burst);
        } else if (kind === "during-shutdown") {
          // SIGTERM starts the last flush and the closing checkpoint; SIGKILL cuts them short,
          // as systemd does when the stop timeout runs out.
          await Bun.sleep(wait);
          svc.proc.kill("SIGTERM");
          await Bun.sleep(rng() * 150);
          killNow();
        } else {
          // Hook-driven kills fall back to a timed one when no flush comes along.
          await Promise.race([dead, Bun.sleep(kind === "random" ? wait : 2_000)]);
          killNow();
        }
        await svc.proc.exited;
        proxy.setPlan(undefined);
        proxy.setAfterUpstream(undefined);
      }

      // Final start: the bot's pending requests get their answers, the backlog drains.
      const last = await startService({ dbPath, env: { ...env(rng), ZOE_CHECKPOINT_INTERVAL_MS: "5" } });
      current = last;
      bot.stopProducing();
      await bot.settled(30_000);
      await waitForDrain(last.url, 60_000);
      expect(await last.kill("SIGTERM")).toBe(0);
      current = null;
    } finally {
      await bot.abort();
      if (current) await (current as ServiceProcess).kill("SIGKILL");
    }

    const report = await checkInvariant({ ledger, dbPath, sql: stack.sql });
    const seconds = ((performance.now() - started) / 1000).toFixed(1);
    console.log(
      `kill loop: ${ROUNDS} rounds (${Object.entries(kills)
        .map(([k, n]) => `${k} ${n}`)
        .join(", ")}), ` +
        `first-start kills left schema versions [${firstStart.join(", ")}]; ` +
        `${report.acked} events acknowledged, ${report.remote} in Postgres (${Object.entries(report.perMode)
          .map(([m, n]) => `${m} ${n}`)
          .join(", ")}), ` +
        `${ledger.requests} requests (${ledger.failedRequests} failed and retried), ${proxy.calls()} remote calls; invariant holds; ${seconds} s`,
    );
    expect(report.acked).toBeGreaterThan(0);
    dir.cleanup();
    scratch.cleanup();
  },
  120_000 + ROUNDS * 6_000,
);
