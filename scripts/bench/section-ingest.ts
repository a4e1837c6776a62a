// Ingest through the real service: single-event POSTs at 16 and 64
// connections with group commit on and off, and batched POSTs (100 events per
// request) against the bare 500-per-transaction insert rate.
import type { LoadResult } from "./http-load.ts";
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

async function drive(ctx: BenchContext, service: BenchService, label: string, body: string, eventsPerRequest: number, connections: number): Promise<Point> {
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
  return { label, eventsPerRequest, load, commits, spanCpuMs };
}

async function withService<T>(ctx: BenchContext, name: string, env: Record<string, string>, work: (s: BenchService) => Promise<T>): Promise<T> {
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
const cpuPerEvent = (p: Point) => (p.load.watchedCores === null ? NaN : (p.load.watchedCores * 1e6) / eventsPerSecond(p));

function row(p: Point): string[] {
  const c = p.commits;
  return [
    p.label,
    String(p.load.connections),
    fmt.int(eventsPerSecond(p)),
    fmt.ms(p.load.latencyMs.p50),
    fmt.ms(p.load.latencyMs.p99),
    c ? (c.requests / Math.max(1, c.commits)).toFixed(1) : "n/a",
    c ? `${fmt.ms(c.commitDurationMs.p50)} / ${fmt.ms(c.commitDurationMs.p99)} / ${fmt.ms(c.commitDurationMs.max)}` : "n/a",
    c ? fmt.pct(c.commitMs / p.spanCpuMs) : "n/a",
    fmt.cores(p.load.watchedCores),
    fmt.ms(cpuPerEvent(p)),
    fmt.cores(p.load.generatorCores),
    String(p.load.errors),
  ];
}

const HEADER = ["ingest", "conns", "events/s", "p50 ms", "p99 ms", "requests/commit", "commit ms p50/p99/max", "commit share of service CPU", "service cores", "service µs/event", "generator cores", "errors"];

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
    ctx.results.ingest = { on, off };
    const on64 = on[1]!;
    const off64 = off[1]!;
    const raw = ctx.results.raw as RawResults | undefined;
    const ratio = eventsPerSecond(on64) / eventsPerSecond(off64);
    const analysis: string[] = [];
    const c = on64.commits;
    if (c) {
      analysis.push(
        `Group commit at 64 connections: ${(c.requests / Math.max(1, c.commits)).toFixed(1)} requests per commit on average (median ${c.requestsPerCommit.p50}, p99 ${c.requestsPerCommit.p99}, max ${c.maxRequests}); SQLite work (${fmt.ms((c.commitMs * 1000) / Math.max(1, c.events))} µs per event inside commit) is a minor share of the ${fmt.ms(cpuPerEvent(on64))} µs of service CPU per event, so the service is bound by per-request CPU on its one JS thread (HTTP parsing, Elysia routing, JSON, validation, response), not by the disk.`,
      );
    }
    analysis.push(
      `Group commit off: one transaction per request, ${fmt.int(eventsPerSecond(off64))} events/s at 64 connections${raw ? ` (bare autocommit inserts: ${fmt.int(raw.sqlite.autocommitPerSecond)} rows/s)` : ""}; the per-commit WAL write dominates, so more connections do not help.`,
    );
    if (raw) {
      analysis.push(
        `Against the bare Bun.serve handler (${fmt.int(raw.bareHttp.requestsPerSecond)} req/s) the service reaches ${fmt.pct(eventsPerSecond(on64) / raw.bareHttp.requestsPerSecond)} of the raw HTTP rate; the generator shares the 2 cores (${fmt.cores(on64.load.generatorCores)} cores at 64 connections).`,
      );
    }
    return {
      table: [HEADER, ...on.map(row), ...off.map(row)],
      targets: [
        { what: "single-event ingest, 64 conns", measured: `${fmt.int(eventsPerSecond(on64))} events/s`, target: "≥ 20,000 events/s", met: eventsPerSecond(on64) >= 20_000 },
        { what: "single-event p99, 64 conns", measured: `${fmt.ms(on64.load.latencyMs.p99)} ms`, target: "< 10 ms", met: on64.load.latencyMs.p99 < 10 },
        { what: "group commit on / off, 64 conns", measured: fmt.x(ratio), target: "≥ 3.5×", met: ratio >= 3.5 },
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
    const points = await withService(ctx, "batched", {}, async (s) => [
      await drive(ctx, s, "100 events/request", batch, 100, 4),
      await drive(ctx, s, "100 events/request", batch, 100, 16),
    ]);
    ctx.results.batched = points;
    const best = points.reduce((a, b) => (eventsPerSecond(b) > eventsPerSecond(a) ? b : a));
    const raw = ctx.results.raw as RawResults | undefined;
    const bare = raw?.sqlite.batch500PerSecond ?? NaN;
    const share = eventsPerSecond(best) / bare;
    const c = best.commits;
    return {
      table: [HEADER, ...points.map(row)],
      targets: [
        {
          what: "batched ingest vs bare 500/txn inserts",
          measured: `${fmt.int(eventsPerSecond(best))} events/s = ${fmt.pct(share)} of ${fmt.int(bare)}`,
          target: "≥ 80%",
          met: Number.isFinite(share) ? share >= 0.8 : null,
        },
      ],
      analysis: [
        `Per event the service spends ${fmt.ms(cpuPerEvent(best))} µs of CPU${c ? `, of which ${fmt.ms((c.commitMs * 1000) / Math.max(1, c.events))} µs inside the SQLite commit` : ""}; the bare insert costs ${fmt.ms(1e6 / bare)} µs. The rest is JSON parsing, per-event schema validation and building the response, all on the one JS thread.`,
      ],
    } satisfies SectionReport;
  },
};
