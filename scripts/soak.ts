// `bun run bench:soak [-- --duration=10m --rate=2000 --sse=50 --flap-every=60s
// --flap-down=20s --window=60s --connections=16 --no-write]`
//
// The real service (src/main.ts, its own process) flushing to the local
// Supabase stack (Postgres, the zoe-ingest function under Deno, the gateway),
// under open-loop ingest at `rate` events/s from one process and `sse` live
// SSE clients in another, while the Edge Function is stopped for `flap-down`
// of every `flap-every`. Per window: ingest p50/p99, SSE p99, service RSS,
// backlog and its oldest age, flush failures. At the end the remote is left
// up, the backlog drains, and Postgres is checked: every acknowledged event
// exactly once, seqs gapless. The table goes to BENCHMARKS.md between the
// soak markers (the rest of the file belongs to `bun run bench`).
import { Database } from "bun:sqlite";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { cpuSecondsOf, epochMs, machine, memoryOf, ROOT } from "./bench/lib.ts";
import type { LoadArgs, LoadFinal, LoadWindow, SseArgs, SseFinal, SseWindow } from "./soak/protocol.ts";
import { jsonChild, scrape, startListening } from "./soak/processes.ts";
import { renderSoak, type SoakReport, type SoakRow, spliceSection } from "./soak/report.ts";
import { startSupabaseStack } from "./supabase-local/stack.ts";

function option(name: string, fallback: string): string {
  return process.argv.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3) ?? fallback;
}
/** "10m", "90s", "1500ms" or plain milliseconds. */
function duration(text: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/.exec(text);
  if (!m) throw new Error(`not a duration: ${text} (e.g. 10m, 90s)`);
  return Number(m[1]) * { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[(m[2] ?? "ms") as "ms"];
}

const cfg = {
  durationMs: duration(option("duration", "10m")),
  rate: Number(option("rate", "2000")),
  sse: Number(option("sse", "50")),
  flapEveryMs: duration(option("flap-every", "60s")),
  flapDownMs: duration(option("flap-down", "20s")),
  windowMs: duration(option("window", "60s")),
  connections: Number(option("connections", "16")),
  write: !process.argv.includes("--no-write"),
};
const started = performance.now();
const log = (msg: string) => console.log(`[soak ${((performance.now() - started) / 1000).toFixed(0)}s] ${msg}`);

const dir = mkdtempSync(join(tmpdir(), "zoe-soak-"));
const run = `soak-${Date.now().toString(36)}`;
const host = machine(dir);
log(
  `starting the Supabase stack; ${cfg.durationMs / 1000} s at ${cfg.rate} events/s, ${cfg.sse} SSE clients, remote down ${cfg.flapDownMs / 1000} s of every ${cfg.flapEveryMs / 1000} s`,
);
const stack = await startSupabaseStack();
const dbPath = join(dir, "soak.db");
const service = await startListening(
  ["bun", join(ROOT, "src", "main.ts")],
  {
    PATH: process.env.PATH ?? "",
    HOME: process.env.HOME ?? "/tmp",
    HOST: "127.0.0.1",
    PORT: "0",
    ZOE_DB_PATH: dbPath,
    ZOE_LOG_LEVEL: "warn",
    SUPABASE_URL: stack.url,
    SUPABASE_SERVICE_ROLE_KEY: stack.serviceKey,
    // Flush around the clock (the soak may run off market hours); a 10 s backoff cap so each outage drains within its minute.
    ZOE_FLUSH_MARKET_HOURS: "false",
    ZOE_FLUSH_BACKOFF_MAX_MS: "10000",
    ZOE_SSE_MAX_CLIENTS_PER_IP: String(Math.max(50, cfg.sse * 2)),
  },
  /zoe-local listening on (http:\/\/[^\s"]+)/,
);
const pid = service.proc.pid;
const rows = new Map<number, SoakRow>();
// Per window: the sum and count of the 1 s RSS samples. RSS swings 20+ MB with
// each GC cycle, so one sample per window (the last) made a trend out of noise.
const rssSamples = new Map<number, { sum: number; n: number }>();
const row = (index: number): SoakRow => {
  let r = rows.get(index);
  if (!r)
    rows.set(
      index,
      (r = {
        index,
        remoteDownS: 0,
        rssMb: 0,
        rssMaxMb: 0,
        backlogMax: 0,
        oldestMaxS: 0,
        flushFailures: 0,
        cpuCores: 0,
      }),
    );
  return r;
};

const load = jsonChild<LoadWindow, LoadFinal>("load.ts", {
  url: service.url,
  rate: cfg.rate,
  connections: cfg.connections,
  mode: "live",
  run,
  startEpoch: 0,
  windowMs: cfg.windowMs,
} satisfies LoadArgs);
const sse = jsonChild<SseWindow, SseFinal>("sse.ts", {
  url: service.url,
  clients: cfg.sse,
  mode: "live",
  startEpoch: 0,
  windowMs: cfg.windowMs,
} satisfies SseArgs);
const timers: ReturnType<typeof setInterval>[] = [];
let remoteUp = true;
let exitCode = 1;
try {
  await Promise.all([load.ready(), sse.ready()]);
  const startEpoch = epochMs();
  for (const child of [load, sse]) {
    child.proc.stdin.write(`start ${startEpoch}\n`);
    child.proc.stdin.flush();
  }
  const windowOf = (t: number) => Math.floor((t - startEpoch) / cfg.windowMs);
  log(`load started: ${cfg.rate} events/s, ${cfg.sse} SSE clients connected`);

  // Samplers: RSS and CPU each second, the service's own metrics every 2 s.
  let gone = false;
  let lastCpu = cpuSecondsOf(pid);
  let lastCpuAt = epochMs();
  timers.push(
    setInterval(() => {
      if (service.proc.exitCode !== null) return;
      const now = epochMs();
      const r = row(windowOf(now));
      let mem: ReturnType<typeof memoryOf>;
      try {
        mem = memoryOf(pid);
      } catch {
        if (!gone)
          log(`the service process is gone (exit ${service.proc.exitCode}, signal ${service.proc.signalCode})`);
        gone = true;
        return;
      }
      const s = rssSamples.get(windowOf(now)) ?? { sum: 0, n: 0 };
      if (!Number.isNaN(mem.rssMb)) {
        s.sum += mem.rssMb;
        s.n++;
      }
      rssSamples.set(windowOf(now), s);
      r.rssMb = s.n > 0 ? s.sum / s.n : r.rssMb;
      r.rssMaxMb = Math.max(r.rssMaxMb, mem.rssMb);
      if (!remoteUp) r.remoteDownS += 1;
      const cpu = cpuSecondsOf(pid);
      r.cpuCores = Math.max(r.cpuCores, (cpu - lastCpu) / ((now - lastCpuAt) / 1000));
      lastCpu = cpu;
      lastCpuAt = now;
    }, 1000),
  );
  let lastFailures = 0;
  timers.push(
    setInterval(async () => {
      try {
        const m = await scrape(service.url);
        const r = row(windowOf(epochMs()));
        r.backlogMax = Math.max(r.backlogMax, m.get('zoe_backlog_events{mode="live"}') ?? 0);
        r.oldestMaxS = Math.max(r.oldestMaxS, m.get('zoe_oldest_unflushed_age_seconds{mode="live"}') ?? 0);
        const failures = m.get('zoe_flush_failures_total{mode="live"}') ?? 0;
        r.flushFailures += failures - lastFailures;
        lastFailures = failures;
      } catch {
        // a missed scrape leaves the row as it is
      }
    }, 2000),
  );

  // The remote flaps: down for the last flapDown of every flapEvery.
  const endAt = startEpoch + cfg.durationMs;
  while (epochMs() < endAt) {
    const inPeriod = (epochMs() - startEpoch) % cfg.flapEveryMs;
    const shouldBeUp = inPeriod < cfg.flapEveryMs - cfg.flapDownMs;
    if (shouldBeUp !== remoteUp) {
      if (shouldBeUp) await stack.restartFunction();
      else await stack.stopFunction();
      remoteUp = shouldBeUp;
      log(`remote ${remoteUp ? "up" : "down"}`);
    }
    await Bun.sleep(Math.min(250, Math.max(1, endAt - epochMs())));
  }

  const loadFinal = await load.finish("stop");
  log(`load stopped: ${loadFinal.acked} acknowledged, ${loadFinal.errors} not`);
  if (!remoteUp) {
    await stack.restartFunction();
    remoteUp = true;
  }
  const drainStart = performance.now();
  const drainDeadline = drainStart + 300_000;
  let lastSeq = 0;
  for (;;) {
    const m = await scrape(service.url);
    lastSeq = m.get('zoe_last_seq{mode="live"}') ?? 0;
    if ((m.get('zoe_backlog_events{mode="live"}') ?? 1) === 0) break;
    if (performance.now() > drainDeadline)
      throw new Error("the backlog did not drain within 5 minutes of the load stopping");
    await Bun.sleep(250);
  }
  const drainS = (performance.now() - drainStart) / 1000;
  log(`backlog drained in ${drainS.toFixed(1)} s; last seq ${lastSeq}`);
  const sseFinal = await sse.finish(`final ${lastSeq}`);
  for (const t of timers.splice(0)) clearInterval(t);
  service.proc.kill("SIGTERM");
  const serviceExit = await service.proc.exited;

  // Postgres: every acknowledged event exactly once; seqs gapless.
  const unacked = new Set(loadFinal.unacked);
  const present = (await stack.sql`select (meta->>'n')::int as n from zoe_events where source = ${run}`) as {
    n: number;
  }[];
  const seen = new Set(present.map((p) => p.n));
  let lost = 0;
  for (let n = 0; n < loadFinal.sent; n++) if (!unacked.has(n) && !seen.has(n)) lost++;
  const [stats] =
    // Seqs as text: a start's range begins at its start time x 1000, past int4.
    (
      (await stack.sql`select count(*)::int as rows, count(distinct idempotency_key)::int as keys, coalesce(min(seq), 0)::text as min, coalesce(max(seq), 0)::text as max
    from zoe_events where mode = 'live'`) as { rows: number; keys: number; min: string; max: string }[]
    ).map((r) => ({ ...r, min: Number(r.min), max: Number(r.max) }));
  const db = new Database(dbPath, { readonly: true });
  const integrity = (db.query("PRAGMA integrity_check").get() as { integrity_check: string }).integrity_check;
  db.close();

  for (const w of load.windows)
    Object.assign(row(w.index), { sent: w.sent, acked: w.acked, errors: w.errors, ingest: w.latencyMs });
  for (const w of sse.windows) Object.assign(row(w.index), { sse: w.latencyMs, sseEvents: w.events, sseGaps: w.gaps });
  const windows = Math.ceil(cfg.durationMs / cfg.windowMs);
  const report: SoakReport = {
    date: new Date().toISOString(),
    machine: host,
    loadAfter: loadavg().map((l) => Math.round(l * 100) / 100),
    config: cfg,
    rows: [...rows.values()].filter((r) => r.index >= 0 && r.index < windows).sort((a, b) => a.index - b.index),
    sent: loadFinal.sent,
    acked: loadFinal.acked,
    errors: loadFinal.errors,
    statuses: loadFinal.statuses,
    lost,
    remoteRows: stats!.rows,
    remoteDistinctKeys: stats!.keys,
    // One start, one seq range: gapless from its first seq to the last.
    seqGapless: stats!.rows === (stats!.rows === 0 ? 0 : stats!.max - stats!.min + 1) && stats!.max === lastSeq,
    lastSeq,
    drainS,
    sse: sseFinal,
    loadCores: loadFinal.cores,
    serviceExit,
    integrity,
  };
  const markdown = renderSoak(report);
  console.log(`\n${markdown}\n`);
  if (cfg.write) {
    const path = join(ROOT, "BENCHMARKS.md");
    writeFileSync(path, spliceSection(existsSync(path) ? readFileSync(path, "utf8") : "", markdown));
    log("wrote the soak section of BENCHMARKS.md");
  }
  exitCode = report.lost === 0 && report.seqGapless ? 0 : 1;
} catch (error) {
  console.error("[soak] failed:", error);
  console.error(
    `[soak] service exit code ${service.proc.exitCode} signal ${service.proc.signalCode}; its output:\n${service.output().slice(-4000)}`,
  );
} finally {
  for (const t of timers) clearInterval(t);
  for (const child of [load.proc, sse.proc]) if (child.exitCode === null) child.kill("SIGKILL");
  await service.stop();
  await stack.stop();
  rmSync(dir, { recursive: true, force: true });
}
process.exit(exitCode);
