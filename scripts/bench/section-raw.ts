// Raw limits of this machine, measured in the same run as the service so the
// ratios compare like with like: a bare Bun.serve JSON handler and bare
// prepared bun:sqlite inserts with the service's schema and pragmas.
import type { BareSqliteResult } from "./bare-sqlite.ts";
import type { LoadResult } from "./http-load.ts";
import { BENCH_DIR, runJson, sampleEvent, spawnListening } from "./lib.ts";
import { type BenchContext, fmt, type Section } from "./section.ts";
import { join } from "node:path";

export interface RawResults {
  bareHttp: LoadResult;
  /** The naive per-request-commit Elysia server (scripts/bench/naive-elysia.ts), 64 connections. */
  naiveElysia: LoadResult;
  sqlite: BareSqliteResult;
}

async function loadOf(
  ctx: BenchContext,
  cmd: string[],
  marker: RegExp,
  path: string,
  body: string,
): Promise<LoadResult> {
  const server = await spawnListening(cmd, { PATH: process.env.PATH ?? "" }, marker);
  try {
    return await runJson<LoadResult>("http-load.ts", {
      url: server.url,
      path,
      body,
      connections: 64,
      warmupMs: ctx.ms(1000, 500),
      durationMs: ctx.ms(4000, 2000),
      watchPid: server.proc.pid,
    });
  } finally {
    await server.stop();
  }
}

export const rawSection: Section = {
  id: "raw",
  title: "Raw limits (same run)",
  async run(ctx: BenchContext) {
    ctx.log("bare Bun.serve JSON handler, 64 connections");
    const body = JSON.stringify(sampleEvent(1));
    const bareHttp = await loadOf(
      ctx,
      ["bun", join(BENCH_DIR, "bare-server.ts")],
      /listening on (http:\/\/\S+)/,
      "/",
      body,
    );
    ctx.log("naive Elysia server, one commit per request, 64 connections");
    const naiveElysia = await loadOf(
      ctx,
      ["bun", join(BENCH_DIR, "naive-elysia.ts"), JSON.stringify({ path: join(ctx.dir, "naive-elysia.db") })],
      /listening on (http:\/\/\S+)/,
      "/local/events",
      body,
    );
    if (naiveElysia.errors > 0)
      ctx.log(`  naive server: ${naiveElysia.errors} errors, first: ${naiveElysia.firstError}`);
    ctx.log("bare bun:sqlite prepared inserts (autocommit, 500 per transaction, :memory:)");
    const sqlite = await runJson<BareSqliteResult>("bare-sqlite.ts", {
      dir: ctx.dir,
      autocommitRows: ctx.quick ? 3000 : 10_000,
      batchedRows: ctx.quick ? 50_000 : 200_000,
    });
    ctx.results.raw = { bareHttp, naiveElysia, sqlite } satisfies RawResults;
    return {
      table: [
        ["raw limit", "rate", "p50 ms", "p99 ms", "server cores", "generator cores"],
        [
          "bare Bun.serve JSON handler, 64 conns",
          `${fmt.int(bareHttp.requestsPerSecond)} req/s`,
          fmt.ms(bareHttp.latencyMs.p50),
          fmt.ms(bareHttp.latencyMs.p99),
          fmt.cores(bareHttp.watchedCores),
          fmt.cores(bareHttp.generatorCores),
        ],
        [
          "naive Elysia server, one commit per request, 64 conns",
          `${fmt.int(naiveElysia.requestsPerSecond)} req/s`,
          fmt.ms(naiveElysia.latencyMs.p50),
          fmt.ms(naiveElysia.latencyMs.p99),
          fmt.cores(naiveElysia.watchedCores),
          fmt.cores(naiveElysia.generatorCores),
        ],
        ["bare bun:sqlite insert, autocommit", `${fmt.int(sqlite.autocommitPerSecond)} rows/s`, "", "", "", ""],
        ["bare bun:sqlite insert, 500 per transaction", `${fmt.int(sqlite.batch500PerSecond)} rows/s`, "", "", "", ""],
        [
          "bare bun:sqlite insert, 500 per transaction, :memory:",
          `${fmt.int(sqlite.memoryBatch500PerSecond)} rows/s`,
          "",
          "",
          "",
          "",
        ],
      ],
      targets: [],
      analysis: [
        `bun:sqlite: autocommit costs ${fmt.ms(1000 / sqlite.autocommitPerSecond)} ms per row (one WAL commit each); at 500 per transaction a row costs ${fmt.ms(1000_000 / sqlite.batch500PerSecond)} µs, against ${fmt.ms(1000_000 / sqlite.memoryBatch500PerSecond)} µs in memory: the gap is per-commit I/O, which is what group commit amortises.`,
        `Bare Bun.serve is CPU-bound on its single JS thread (${fmt.cores(bareHttp.watchedCores)} cores) with the generator taking ${fmt.cores(bareHttp.generatorCores)} cores of the same machine.`,
      ],
    };
  },
};
