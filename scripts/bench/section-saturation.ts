// HTTP saturation measured with wrk (scripts/bench/wrk.ts), so the ratios are
// to Bun, not to the bench's own generator: a bare Bun.serve POST handler that
// parses the JSON body, the service's single-event ingest at 64 connections,
// and batched ingest (100 events a request) against bare 500-row transactions
// of bun:sqlite measured right before it.
import { join } from "node:path";
import type { BareSqliteResult } from "./bare-sqlite.ts";
import { BENCH_DIR, runJson, sampleEvent, spawnListening } from "./lib.ts";
import { fmt, type Section } from "./section.ts";
import { startBenchService } from "./service.ts";
import { ensureWrk, runWrk, type WrkResult } from "./wrk.ts";

const BATCH = 100;

export const saturationSection: Section = {
  id: "saturation",
  title: "HTTP saturation with wrk (-t1, POST bodies from a Lua script)",
  unavailable: () => ensureWrk(),
  async run(ctx) {
    const durationS = ctx.quick ? 3 : 5;
    const warmupS = 1;
    const single = JSON.stringify(sampleEvent(1));
    const batch = JSON.stringify(Array.from({ length: BATCH }, (_, i) => sampleEvent(i)));

    ctx.log("wrk: bare Bun.serve POST + JSON handler, 64 connections");
    const bareServer = await spawnListening(
      ["bun", join(BENCH_DIR, "bare-server.ts")],
      { PATH: process.env.PATH ?? "" },
      /listening on (http:\/\/\S+)/,
    );
    let bare: WrkResult;
    try {
      bare = await runWrk({
        dir: ctx.dir,
        url: bareServer.url,
        path: "/",
        body: single,
        connections: 64,
        durationS,
        warmupS,
        watchPid: bareServer.proc.pid,
      });
    } finally {
      await bareServer.stop();
    }

    ctx.log("wrk: service, single-event ingest, 64 connections");
    let ingest: WrkResult;
    let batched: WrkResult;
    const service = await startBenchService(ctx.dir, "saturation", { ZOE_BENCH_STATS_FILE: "" });
    try {
      ingest = await runWrk({
        dir: ctx.dir,
        url: service.url,
        path: "/local/events",
        body: single,
        connections: 64,
        durationS,
        warmupS,
        watchPid: service.pid,
      });
    } finally {
      ctx.memory.push({ label: "saturation (wrk, single)", ...service.memory() });
      await service.stop();
    }
    ctx.log("bare bun:sqlite, 500 per transaction, next to the batched run");
    const sqlite = await runJson<BareSqliteResult>("bare-sqlite.ts", {
      dir: ctx.dir,
      autocommitRows: 500,
      batchedRows: ctx.quick ? 50_000 : 200_000,
    });
    ctx.log(`wrk: service, batched ingest (${BATCH} events/request), 16 connections`);
    const batchService = await startBenchService(ctx.dir, "saturation-batched", { ZOE_BENCH_STATS_FILE: "" });
    try {
      batched = await runWrk({
        dir: ctx.dir,
        url: batchService.url,
        path: "/local/events",
        body: batch,
        connections: 16,
        durationS,
        warmupS,
        watchPid: batchService.pid,
      });
    } finally {
      ctx.memory.push({ label: "saturation (wrk, batched)", ...batchService.memory() });
      await batchService.stop();
    }
    ctx.results.saturation = { bare, ingest, batched, sqlite };
    const singleShare = ingest.requestsPerSecond / bare.requestsPerSecond;
    const batchedRate = batched.requestsPerSecond * BATCH;
    const batchedShare = batchedRate / sqlite.batch500PerSecond;
    const row = (label: string, r: WrkResult, eventsPerRequest: number) => [
      label,
      String(r.connections),
      fmt.int(r.requestsPerSecond * eventsPerRequest),
      fmt.ms(r.latencyMs.p50),
      fmt.ms(r.latencyMs.p99),
      fmt.cores(r.watchedCores),
      r.watchedCores === null ? "n/a" : fmt.ms((r.watchedCores * 1e6) / (r.requestsPerSecond * eventsPerRequest)),
      fmt.cores(r.generatorCores),
      String(r.errors),
    ];
    return {
      table: [
        ["server", "conns", "events/s", "p50 ms", "p99 ms", "server cores", "server µs/event", "wrk cores", "errors"],
        row("bare Bun.serve, POST + JSON.parse", bare, 1),
        row("service, single-event ingest", ingest, 1),
        row(`service, batched ingest (${BATCH} events/request)`, batched, BATCH),
        ["bare bun:sqlite, 500 rows per transaction", "", fmt.int(sqlite.batch500PerSecond), "", "", "", "", "", ""],
      ],
      targets: [
        {
          what: "single-event ingest (wrk, 64 conns) / bare Bun.serve POST + JSON (wrk)",
          measured: `${fmt.pct(singleShare)} (${fmt.int(ingest.requestsPerSecond)} vs ${fmt.int(bare.requestsPerSecond)} req/s)`,
          target: "≥ 25%",
          met: ingest.errors === 0 ? singleShare >= 0.25 : false,
        },
        {
          what: "batched ingest (wrk, 16 conns) / bare 500-row transactions",
          measured: `${fmt.pct(batchedShare)} (${fmt.int(batchedRate)} vs ${fmt.int(sqlite.batch500PerSecond)} events/s)`,
          target: "≥ 80%",
          met: batched.errors === 0 ? batchedShare >= 0.8 : false,
        },
      ],
      analysis: [
        `wrk (one thread) took ${fmt.cores(bare.generatorCores)} cores to drive bare Bun.serve at ${fmt.int(bare.requestsPerSecond)} req/s, which used ${fmt.cores(bare.watchedCores)}: on 2 cores the generator and the server share the machine, so the bare figure is what one Bun thread does with most of a core of its own. The service at 64 connections does ${fmt.pct(singleShare)} of that with auth, validation, a group commit and an fdatasync behind every answer.`,
      ],
    };
  },
};
