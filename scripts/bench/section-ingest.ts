// Ingest through the real service: single-event POSTs at 16 and 64
// connections with group commit on and off, the price of ZOE_SYNCHRONOUS=FULL
// (the default) against NORMAL at 64 connections, and batched POSTs (100 events per
// request) against the bare 500-per-transaction insert rate.
import type { LoadResult } from "./http-load.ts";
import type { BareSqliteResult } from "./bare-sqlite.ts";
import { cpuSecondsOf, runJson, sampleEvent } from "./lib.ts";
import type { RawResults } from "./section-raw.ts";
import { type BenchContext, fmt, type Section, type SectionReport } from "./section.ts";
import { type BenchService, type CommitStats, startBenchService } from "./service.ts";

interface Point {
  label: string;
  eventsPerRequest: number;
  load: LoadResult;
  commits: CommitStats | null;
  /** Service CPU ms over the span the commit counters cover (warmup included). */
  spanCpuMs: number;
}

async function drive(
  ctx: BenchContext,
  service: BenchService,
  label: string,
  body: string,
  eventsPerRequest: number,
  connections: number,
): Promise<Point> {
  ctx.log(`${label}: ${connections} connections`);
  await service.commitStats(); // reset the counters
  const cpu0 = cpuSecondsOf(service.pid);
  const load = await runJson<LoadResult>("http-load.ts", {
    url: service.url,
    path: "/local/events",
    body,
    connections,
    warmupMs: ctx.ms(1000, 500),
    durationMs: ctx.ms(5000, 2000),
    watchPid: service.pid,
  });
  const commits = await service.commitStats();
  const spanCpuMs = (cpuSecondsOf(service.pid) - cpu0) * 1000;
  if (load.errors > 0) ctx.log(`  ${load.errors} errors, first: ${load.firstError}`);
  if (load.openConnections !== connections)
    ctx.log(`  only ${load.openConnections} of ${connections} connections stayed open`);
  return { label, eventsPerRequest, load, commits, spanCpuMs };
}

async function withService<T>(
  ctx: BenchContext,
  name: string,
  env: Record<string, string>,
  work: (s: BenchService) => Promise<T>,
): Promise<T> {
  const service = await startBenchService(ctx.dir, name, env);
  try {
    return await work(service);
  } finally {
    ctx.memory.push({ label: name, ...service.memory() });
    await service.stop();
  }
}

const eventsPerSecond = (p: Point) => p.load.requestsPerSecond * p.eventsPerRequest;
/** Service CPU per event, µs: steadier than throughput on a shared machine. */
const cpuPerEvent = (p: Point) =>
  p.load.watchedCores === null ? NaN : (p.load.watchedCores * 1e6) / eventsPerSecond(p);

function row(p: Point): string[] {
  const c = p.commits;
  return [
    p.label,
    String(p.load.connections),
    fmt.int(eventsPerSecond(p)),
    fmt.ms(p.load.latencyMs.p50),
    fmt.ms(p.load.latencyMs.p99),
    c ? (c.requests / Math.max(1, c.commits)).toFixed(1) : "n/a",
    c
      ? `${fmt.ms(c.commitDurationMs.p50)} / ${fmt.ms(c.commitDurationMs.p99)} / ${fmt.ms(c.commitDurationMs.max)}`
      : "n/a",
    c ? fmt.pct(c.commitMs / p.spanCpuMs) : "n/a",
    fmt.cores(p.load.watchedCores),
    fmt.ms(cpuPerEvent(p)),
    fmt.cores(p.load.generatorCores),
    String(p.load.errors),
  ];
}

const HEADER = [
  "ingest",
  "conns",
  "events/s",
  "p50 ms",
  "p99 ms",
  "requests/commit",
  "commit ms p50/p99/max",
  "commit share of service CPU",
  "service cores",
  "service µs/event",
  "generator cores",
  "errors",
];

export const ingestSection: Section = {
  id: "ingest",
  title: "Single-event ingest (POST /local/events, one event per request)",
  async run(ctx) {
    const single = JSON.stringify(sampleEvent(1));
    const on = await withService(ctx, "group-commit-on", {}, async (s) => [
      await drive(ctx, s, "group commit on", single, 1, 16),
      await drive(ctx, s, "group commit on", single, 1, 64),
    ]);
    const off = await withService(ctx, "group-commit-off", { ZOE_GROUP_COMMIT: "false" }, async (s) => [
      await drive(ctx, s, "group commit off", single, 1, 16),
      await drive(ctx, s, "group commit off", single, 1, 64),
    ]);
    // FULL fsyncs the WAL at every commit; NORMAL (crash-safe, not power-loss-safe) shows what that costs.
    const normal = await withService(ctx, "synchronous-normal", { ZOE_SYNCHRONOUS: "NORMAL" }, async (s) => [
      await drive(ctx, s, "group commit on, NORMAL", single, 1, 64),
    ]);
    ctx.results.ingest = { on, off, normal };
    const on64 = on[1]!;
    const off64 = off[1]!;
    const raw = ctx.results.raw as RawResults | undefined;
    const ratio = eventsPerSecond(on64) / eventsPerSecond(off64);
    const normal64 = normal[0]!;
    const fullCost = 1 - eventsPerSecond(on64) / eventsPerSecond(normal64);
    const naive = raw?.naiveElysia;
    const overNaive = naive ? eventsPerSecond(on64) / naive.requestsPerSecond : NaN;
    const analysis: string[] = [
      `The rows without a level run the default ZOE_SYNCHRONOUS=FULL (the WAL fdatasynced after every group commit, off the event loop, before the answers, so an answered event survives a power loss). NORMAL at 64 connections: ${fmt.int(eventsPerSecond(normal64))} events/s, p99 ${fmt.ms(normal64.load.latencyMs.p99)} ms, against FULL's ${fmt.int(eventsPerSecond(on64))} events/s, p99 ${fmt.ms(on64.load.latencyMs.p99)} ms: FULL costs ${fmt.pct(fullCost)} of the throughput here (one fsync per group commit, not per request; its CPU is the kernel's, on Bun's thread pool, which shares the machine's cores with everything else).`,
    ];
    if (naive) {
      analysis.push(
        `The naive Elysia server of the raw limits (the shared schema as Elysia's body schema, one autocommit INSERT per request, same synchronous level) does ${fmt.int(naive.requestsPerSecond)} req/s, p99 ${fmt.ms(naive.latencyMs.p99)} ms: the service is ${fmt.x(overNaive)} that, with the bounded store, auth, CORS, metrics and the same durability behind every answer.`,
      );
    }
    const c = on64.commits;
    if (c) {
      const inCommit = (c.commitMs * 1000) / Math.max(1, c.events);
      const bound =
        (on64.load.watchedCores ?? 0) >= 0.85
          ? "CPU-bound on its one JS thread"
          : "not CPU-bound (it waited on the disk or was descheduled)";
      analysis.push(
        `Group commit at 64 connections packs ${(c.requests / Math.max(1, c.commits)).toFixed(1)} requests into a commit on average (median ${c.requestsPerCommit.p50}, max ${c.maxRequests}). The service used ${fmt.cores(on64.load.watchedCores)} cores, ${fmt.ms(cpuPerEvent(on64))} µs per event, of which ${fmt.ms(inCommit)} µs inside the commit (SQLite); the rest is per-request work: HTTP parsing, the token and CORS, JSON, schema validation, the hooks, the response (the budget section splits it). So it is ${bound}, and the load generator took ${fmt.cores(on64.load.generatorCores)} of the machine's ${ctx.machine.cores} cores.`,
        `The p99 (${fmt.ms(on64.load.latencyMs.p99)} ms) is queueing behind 64 in-flight requests plus the longest commits (p99 ${fmt.ms(c.commitDurationMs.p99)} ms, max ${fmt.ms(c.commitDurationMs.max)} ms, the event loop is blocked meanwhile): WAL checkpoints run in a background worker (ZOE_CHECKPOINT_INTERVAL_MS), so a commit only pays for its own WAL write unless the worker falls behind and SQLite's automatic checkpoint (1000 pages) runs inline.`,
      );
    }
    const cOff = off64.commits;
    analysis.push(
      `Group commit off: one transaction per request${cOff ? ` (${fmt.ms((cOff.commitMs * 1000) / Math.max(1, cOff.commits))} µs each)` : ""}, ${fmt.int(eventsPerSecond(off64))} events/s at 64 connections${raw ? ` against ${fmt.int(raw.sqlite.autocommitPerSecond)} bare autocommit inserts/s` : ""}: every request pays a WAL commit, and more connections only queue longer. Group commit is ${fmt.x(ratio)} that rate.`,
    );
    if (raw) {
      analysis.push(
        `For scale, the bare Bun.serve JSON handler does ${fmt.int(raw.bareHttp.requestsPerSecond)} req/s (${fmt.ms(((raw.bareHttp.watchedCores ?? NaN) * 1e6) / raw.bareHttp.requestsPerSecond)} µs per request) on the same machine: the service runs at ${fmt.pct(eventsPerSecond(on64) / raw.bareHttp.requestsPerSecond)} of that with a durable commit behind every answer.`,
      );
    }
    return {
      table: [HEADER, ...on.map(row), ...off.map(row), ...normal.map(row)],
      targets: [
        {
          what: "single-event ingest, 64 conns",
          measured: `${fmt.int(eventsPerSecond(on64))} events/s`,
          target: "≥ 40,000 events/s",
          met: eventsPerSecond(on64) >= 40_000,
        },
        {
          what: "single-event p99, 64 conns",
          measured: `${fmt.ms(on64.load.latencyMs.p99)} ms`,
          target: "< 5 ms",
          met: on64.load.latencyMs.p99 < 5,
        },
        {
          what: "single-event ingest / naive per-request-commit Elysia server, 64 conns",
          measured: naive
            ? `${fmt.x(overNaive)} (${fmt.int(eventsPerSecond(on64))} vs ${fmt.int(naive.requestsPerSecond)})`
            : "n/a (raw section not run)",
          target: "≥ 4×",
          met: naive ? overNaive >= 4 : null,
        },
        { what: "group commit on / off, 64 conns", measured: fmt.x(ratio), target: "≥ 3.5×", met: ratio >= 3.5 },
        {
          what: "FULL vs NORMAL, 64 conns",
          measured: `${fmt.int(eventsPerSecond(on64))} vs ${fmt.int(eventsPerSecond(normal64))} events/s (FULL costs ${fmt.pct(fullCost)})`,
          target: "shown, no target",
          met: null,
        },
      ],
      analysis,
    } satisfies SectionReport;
  },
};

export const batchedSection: Section = {
  id: "batched",
  title: "Batched ingest (POST /local/events, 100 events per request)",
  async run(ctx) {
    const batch = JSON.stringify(Array.from({ length: 100 }, (_, i) => sampleEvent(i)));
    // The bare rate is partly disk-bound and drifts with the machine's load:
    // measure it again right before the service, in the same conditions.
    ctx.log("bare bun:sqlite, 500 per transaction, again next to the batched run");
    const adjacent = await runJson<BareSqliteResult>("bare-sqlite.ts", {
      dir: ctx.dir,
      autocommitRows: 1000,
      batchedRows: ctx.quick ? 50_000 : 200_000,
    });
    const points = await withService(ctx, "batched", {}, async (s) => [
      await drive(ctx, s, "100 events/request", batch, 100, 4),
      await drive(ctx, s, "100 events/request", batch, 100, 16),
    ]);
    ctx.results.batched = points;
    const best = points.reduce((a, b) => (eventsPerSecond(b) > eventsPerSecond(a) ? b : a));
    const raw = ctx.results.raw as RawResults | undefined;
    const bare = adjacent.batch500PerSecond;
    const share = eventsPerSecond(best) / bare;
    const c = best.commits;
    return {
      table: [HEADER, ...points.map(row)],
      targets: [
        {
          what: "batched ingest vs bare 500/txn inserts",
          measured: `${fmt.int(eventsPerSecond(best))} events/s = ${fmt.pct(share)} of ${fmt.int(bare)}${raw ? ` (start of run: ${fmt.int(raw.sqlite.batch500PerSecond)})` : ""}`,
          target: "≥ 80%",
          met: Number.isFinite(share) ? share >= 0.8 : null,
        },
      ],
      analysis: [
        `Best at ${best.load.connections} connections (${c ? `${(c.requests / Math.max(1, c.commits)).toFixed(1)} requests per commit` : "n/a"}). Per event the service spends ${fmt.ms(cpuPerEvent(best))} µs of CPU${c ? `, ${fmt.ms((c.commitMs * 1000) / Math.max(1, c.events))} µs of it inside the commit (multi-row INSERTs, the idempotency lookup, the WAL write)` : ""}; a bare prepared insert costs ${fmt.ms(1e6 / bare)} µs. The rest is JSON parsing and per-event schema validation (about 1.5 µs each), all on the one JS thread. The bare rate itself moves with the disk (it is partly I/O), so the ratio is noisy on a shared machine.`,
      ],
    } satisfies SectionReport;
  },
};
