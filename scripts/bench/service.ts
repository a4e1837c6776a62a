// Starts the real service as a child process on a free port with a temp DB
// (like tests/helpers/service.ts, through the counting entry point) and reads
// its commit statistics and resource use.
import { existsSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { BENCH_DIR, type ListeningChild, memoryOf, spawnListening, summarize } from "./lib.ts";

export interface CommitStats {
  commits: number;
  requests: number;
  events: number;
  /** Time spent inside the store's commit (SQLite work), ms. */
  commitMs: number;
  maxRequests: number;
  requestsPerCommit: ReturnType<typeof summarize>;
  /** Wall time of each commit (the event loop is blocked for it), ms. */
  commitDurationMs: ReturnType<typeof summarize>;
  /** Durations (ms) of the flusher's store calls, by method name. */
  methods: Record<string, ReturnType<typeof summarize> & { totalMs: number }>;
  /** How late a 5 ms timer fired: the longest the event loop was held (or the process descheduled). */
  eventLoopLagMs: ReturnType<typeof summarize>;
}

export interface BenchService extends ListeningChild {
  pid: number;
  /** Commit statistics since the previous call (null if the entry point could not hook the store). */
  commitStats(): Promise<CommitStats | null>;
  memory(): { rssMb: number; peakMb: number };
}

export async function startBenchService(
  dir: string,
  name: string,
  env: Record<string, string> = {},
): Promise<BenchService> {
  const statsFile = join(dir, `${name}.stats.json`);
  const child = await spawnListening(
    ["bun", join(BENCH_DIR, "service-entry.ts")],
    {
      PATH: process.env.PATH ?? "",
      HOME: process.env.HOME ?? "/tmp",
      HOST: "127.0.0.1",
      PORT: "0",
      ZOE_DB_PATH: join(dir, `${name}.db`),
      ZOE_LOG_LEVEL: "warn",
      ZOE_BENCH_STATS_FILE: statsFile,
      ...env,
    },
    /zoe-local listening on (http:\/\/[^\s"]+)/,
  );
  const pid = child.proc.pid;
  return {
    ...child,
    pid,
    memory: () => memoryOf(pid),
    async commitStats() {
      rmSync(statsFile, { force: true });
      child.proc.kill("SIGUSR2");
      const deadline = performance.now() + 3000;
      while (!existsSync(statsFile)) {
        if (performance.now() > deadline) return null;
        await Bun.sleep(10);
      }
      const raw = JSON.parse(readFileSync(statsFile, "utf8")) as Omit<
        CommitStats,
        "requestsPerCommit" | "commitDurationMs" | "methods" | "eventLoopLagMs"
      > & {
        sizes: number[];
        durations: number[];
        methods: Record<string, number[]>;
        lag: number[];
      };
      const { sizes, durations, methods, lag, ...rest } = raw;
      const timed = Object.fromEntries(
        Object.entries(methods).map(([name, ms]) => [
          name,
          { ...summarize(ms), totalMs: ms.reduce((a, b) => a + b, 0) },
        ]),
      );
      return {
        ...rest,
        requestsPerCommit: summarize(sizes),
        commitDurationMs: summarize(durations),
        methods: timed,
        eventLoopLagMs: summarize(lag),
      };
    },
  };
}
