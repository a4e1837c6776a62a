// Network faults between the flusher and the remote: the fault proxy answers
// 500/502/429 (with a Retry-After far above the cap), stalls, drops the
// connection, swallows the answer after the remote committed, cuts answers in
// half; and the remote itself (the Deno function) is restarted while a flush
// is inside it. The bot keeps posting throughout. Each scenario ends with a
// drain and the invariant; the flusher's next attempt, sampled from /health,
// never lies further out than the backoff cap.
//
// FAULT_NET_MS (default 4000 per sink; `bun run test:faults` runs 20000) sets
// how long the faults last; FAULT_RESTARTS (default 3; 8) how many restarts.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { type Bot, faultSeed, Ledger, seededRandom, startBot } from "../helpers/bot.ts";
import { type FaultAction, type FaultProxy, startFaultProxy } from "../helpers/fault-proxy.ts";
import { checkInvariant, waitForDrain } from "../helpers/invariant.ts";
import { type ServiceProcess, startService } from "../helpers/service.ts";
import { startSupabaseStack, type SupabaseStack } from "../helpers/supabase-stack.ts";
import { tempDir } from "../helpers/tmp.ts";

const FAULT_MS = Number(process.env.FAULT_NET_MS ?? 4_000);
const RESTARTS = Number(process.env.FAULT_RESTARTS ?? 3);
const BACKOFF_MAX_MS = 400;

let stack: SupabaseStack;
const cleanups: (() => unknown)[] = [];

beforeAll(async () => {
  stack = await startSupabaseStack();
  // Batches of the restart scenario take 300 ms inside the remote's
  // transaction, so a restart reliably lands while one is in flight.
  await stack.sql.unsafe(`
    create function public.slow_restart_batches() returns trigger language plpgsql as $$
    begin
      if exists (select 1 from new_rows where source like 'restart-%') then perform pg_sleep(0.3); end if;
      return null;
    end $$;
    create trigger slow_restart_batches after insert on public.zoe_events
      referencing new table as new_rows for each statement execute function public.slow_restart_batches();
  `);
}, 60_000);

afterAll(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
  await stack?.stop();
});

function flushEnv(url: string, sink: "edge" | "direct", extra: Record<string, string> = {}): Record<string, string> {
  return {
    SUPABASE_URL: url,
    SUPABASE_SERVICE_ROLE_KEY: stack.serviceKey,
    ZOE_FLUSH_SINK: sink,
    ZOE_FLUSH_MARKET_HOURS: "false",
    ZOE_FLUSH_ACTIVE_MS: "100",
    ZOE_FLUSH_OFFHOURS_MS: "100",
    ZOE_FLUSH_BATCH_SIZE: "25",
    ZOE_FLUSH_BACKOFF_MIN_MS: "50",
    ZOE_FLUSH_BACKOFF_MAX_MS: String(BACKOFF_MAX_MS),
    ZOE_FLUSH_TIMEOUT_MS: "500",
    ZOE_LOG_LEVEL: "error",
    ...extra,
  };
}

async function service(env: Record<string, string>) {
  const dir = tempDir("zoe-net-");
  const dbPath = dir.file("zoe.db");
  const svc = await startService({ dbPath, env });
  cleanups.push(async () => {
    if (svc.proc.exitCode === null && svc.proc.signalCode === null) await svc.kill("SIGKILL");
    dir.cleanup();
  });
  return { svc, dbPath };
}

interface BackoffWatch {
  /** Largest (next_attempt_at − now) seen while a mode was backing off. */
  maxAheadMs: number;
  backoffSamples: number;
  maxFailures: number;
  stop(): Promise<void>;
}

/** Samples /health every ~25 ms: how far ahead the flusher plans its next attempt. */
function watchBackoff(svc: ServiceProcess): BackoffWatch {
  let running = true;
  const watch: BackoffWatch = { maxAheadMs: 0, backoffSamples: 0, maxFailures: 0, stop: async () => {} };
  const loop = (async () => {
    while (running) {
      try {
        const body = (await (await fetch(`${svc.url}/health`, { signal: AbortSignal.timeout(5_000) })).json()) as {
          modes: Record<string, Record<string, unknown>>;
        };
        const now = Date.now();
        for (const m of Object.values(body.modes)) {
          watch.maxFailures = Math.max(watch.maxFailures, Number(m.consecutive_failures ?? 0));
          if (m.flusher !== "backoff" || typeof m.next_attempt_at !== "string") continue;
          watch.backoffSamples++;
          watch.maxAheadMs = Math.max(watch.maxAheadMs, Date.parse(m.next_attempt_at) - now);
        }
      } catch {
        // a sample lost to load is not a finding
      }
      await Bun.sleep(25);
    }
  })();
  watch.stop = async () => {
    running = false;
    await loop;
  };
  return watch;
}

/** What a stuck run looked like: the service's health and last words, the proxy's last requests. */
async function diagnose(svc: ServiceProcess, proxy: FaultProxy): Promise<string> {
  let health: string;
  try {
    health = await (await fetch(`${svc.url}/health`, { signal: AbortSignal.timeout(3_000) })).text();
  } catch (error) {
    health = `no answer: ${(error as Error).message}`;
  }
  const recent = proxy.log.slice(-10).map((e) => `${e.n} ${e.path} ${e.action} → ${e.upstream ?? "-"}`);
  return `health: ${health}\nproxy (${proxy.inFlight()} in flight): ${recent.join("; ")}\nservice output:\n${svc.output().slice(-3000)}`;
}

/**
 * Runs `faults` while the bot posts, then lets the bot finish and the service
 * drain to the remote; a failure on the way carries diagnose()'s picture of the run.
 */
async function faultsThenDrain(
  run: { svc: ServiceProcess; proxy: FaultProxy; bot: Bot },
  faults: () => Promise<void>,
): Promise<void> {
  try {
    await faults();
    run.bot.stopProducing();
    await run.bot.settled();
    await waitForDrain(run.svc.url, 30_000);
  } catch (error) {
    throw new Error(`${(error as Error).message}\n${await diagnose(run.svc, run.proxy)}`, { cause: error });
  }
}

const FAULTS: [number, FaultAction][] = [
  [30, { kind: "forward" }],
  [8, { kind: "status", status: 500 }],
  [8, { kind: "status", status: 502 }],
  [6, { kind: "status", status: 429, retryAfter: "3600" }],
  [4, { kind: "status", status: 429, retryAfter: "1" }],
  [5, { kind: "stall" }],
  [8, { kind: "drop" }],
  [8, { kind: "commit-then-drop" }],
  [5, { kind: "commit-then-stall" }],
  [6, { kind: "commit-then-status", status: 500 }],
  [6, { kind: "truncate" }],
];

function pickFault(rng: () => number): FaultAction {
  const total = FAULTS.reduce((s, [w]) => s + w, 0);
  let x = rng() * total;
  for (const [w, f] of FAULTS) if ((x -= w) < 0) return f;
  return FAULTS[0]![1];
}

describe.each(["edge", "direct"] as const)("network faults, %s sink", (sink) => {
  test(
    "errors, stalls, drops and lost answers: every acknowledged event lands once, and backoff stays under its cap",
    async () => {
      const seed = faultSeed(`network faults (${sink})`);
      const rng = seededRandom(seed);
      const proxy = startFaultProxy({ upstream: stack.url, plan: () => pickFault(rng) });
      cleanups.push(() => proxy.stop());
      const { svc, dbPath } = await service(flushEnv(proxy.url, sink));
      const ledger = new Ledger(`net-${sink}-${seed}-${process.pid}`);
      const bot = startBot({
        url: () => svc.url,
        ledger,
        random: seededRandom(seed + 1),
        workers: 3,
        paceMs: 40,
        maxBatch: 15,
      });
      const watch = watchBackoff(svc);
      const started = performance.now();
      try {
        await faultsThenDrain({ svc, proxy, bot }, async () => {
          await Bun.sleep(FAULT_MS);
          proxy.setPlan(undefined);
        });
      } finally {
        await watch.stop();
        await bot.abort();
      }
      expect(await svc.kill("SIGTERM")).toBe(0);
      const report = await checkInvariant({ ledger, dbPath, sql: stack.sql });
      const kinds: Record<string, number> = {};
      for (const e of proxy.log) kinds[e.action] = (kinds[e.action] ?? 0) + 1;
      console.log(
        `network faults (${sink}): ${proxy.calls()} remote calls (${Object.entries(kinds)
          .map(([k, n]) => `${k} ${n}`)
          .join(", ")}); ` +
          `${report.acked} acknowledged, ${report.remote} in Postgres; up to ${watch.maxFailures} consecutive failures; ` +
          `next attempt at most ${watch.maxAheadMs} ms ahead (cap ${BACKOFF_MAX_MS}) in ${watch.backoffSamples} samples; ${((performance.now() - started) / 1000).toFixed(1)} s`,
      );
      expect(watch.maxFailures).toBeGreaterThanOrEqual(2);
      expect(watch.backoffSamples).toBeGreaterThan(0);
      expect(watch.maxAheadMs).toBeLessThanOrEqual(BACKOFF_MAX_MS);
    },
    60_000 + FAULT_MS * 2,
  );
});

/** Waits until a flush request is inside the remote (between the proxy's forward and the answer). */
async function flushInside(inside: () => number): Promise<void> {
  const deadline = performance.now() + 10_000;
  while (inside() === 0 && performance.now() < deadline) await Bun.sleep(2);
  expect(inside()).toBeGreaterThan(0);
  // Inside the 300 ms pg_sleep of the batch's transaction.
  await Bun.sleep(100);
}

describe("the remote restarted mid-flush", () => {
  test(
    "the Deno function is restarted, or its Postgres sessions killed, while a batch is inside its transaction; nothing lost, nothing doubled",
    async () => {
      const seed = faultSeed("remote restart");
      let inside = 0;
      // Counts flush requests on their way in, so the restart is timed to one.
      const proxy = startFaultProxy({
        upstream: stack.url,
        plan: () => {
          inside++;
          return { kind: "forward" };
        },
        afterUpstream: () => {
          inside--;
        },
      });
      cleanups.push(() => proxy.stop());
      const { svc, dbPath } = await service(flushEnv(proxy.url, "edge", { ZOE_FLUSH_TIMEOUT_MS: "5000" }));
      const ledger = new Ledger(`restart-${seed}-${process.pid}`);
      const bot = startBot({
        url: () => svc.url,
        ledger,
        random: seededRandom(seed),
        workers: 3,
        paceMs: 30,
        maxBatch: 10,
        criticalShare: 0.2,
      });
      const statuses: number[] = [];
      try {
        await faultsThenDrain({ svc, proxy, bot }, async () => {
          for (let i = 0; i < RESTARTS; i++) {
            await flushInside(() => inside);
            // Alternately the function process and its database sessions die under the batch.
            if (i % 2 === 0) await stack.restartFunction();
            else
              await stack.sql`select pg_terminate_backend(pid) from pg_stat_activity where application_name = 'zoe-ingest'`;
          }
        });
      } finally {
        await bot.abort();
      }
      for (const e of proxy.log) if (e.upstream !== null) statuses.push(e.upstream);
      expect(await svc.kill("SIGTERM")).toBe(0);
      const report = await checkInvariant({ ledger, dbPath, sql: stack.sql });
      const failed = statuses.filter((s) => s >= 500).length;
      console.log(
        `remote restart: ${Math.ceil(RESTARTS / 2)} function restarts and ${Math.floor(RESTARTS / 2)} terminated sessions mid-flush, ${statuses.length} calls (${failed} answered 5xx); ${report.acked} acknowledged, ${report.remote} in Postgres`,
      );
      expect(failed).toBeGreaterThanOrEqual(Math.ceil(RESTARTS / 2));
    },
    60_000 + RESTARTS * 15_000,
  );
});
