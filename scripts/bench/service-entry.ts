// Runs the real service (src/main.ts) with timers around a few store methods,
// so the benchmark can see how well group commit batches and what blocks the
// event loop: on SIGUSR2 it writes, since the previous signal, the commits
// (requests and events per commit, durations) and the calls and durations of
// the flusher's store methods, and the event-loop lag to $ZOE_BENCH_STATS_FILE. Nothing else differs
// from `bun start`.
import { renameSync, writeFileSync } from "node:fs";
import { main } from "../../src/main.ts";
import { EventStore } from "../../src/store/store.ts";
import { Writer } from "../../src/store/writer.ts";

interface Batch {
  events: unknown[];
}

/** Store methods the flusher calls on the event loop (timed when present). */
const TIMED = ["unflushed", "markFlushed", "markFlushedRange", "backlog", "latestState", "logFlush"] as const;

const statsFile = process.env.ZOE_BENCH_STATS_FILE;
type Methods = Record<string, ((...args: unknown[]) => unknown) | undefined>;
const proto = EventStore.prototype as unknown as Methods;
// The group commit lives in the store's writer (src/store/writer.ts).
const writerProto = Writer.prototype as unknown as Methods;
let stats = fresh();

function fresh() {
  return {
    commits: 0,
    requests: 0,
    events: 0,
    commitMs: 0,
    maxRequests: 0,
    sizes: [] as number[],
    durations: [] as number[],
    methods: {} as Record<string, number[]>,
    /** Event-loop lag: how late each 5 ms timer tick fired, ms. */
    lag: [] as number[],
  };
}

function wrap(name: string, record: (ms: number, args: unknown[]) => void, on: Methods = proto): void {
  const original = on[name];
  if (typeof original !== "function") return;
  on[name] = function (this: unknown, ...args: unknown[]) {
    const t0 = performance.now();
    try {
      return original.apply(this, args);
    } finally {
      record(performance.now() - t0, args);
    }
  };
}

if (statsFile) {
  wrap(
    "commit",
    (ms, [batch]) => {
      const requests = batch as Batch[];
      stats.commitMs += ms;
      stats.commits++;
      stats.requests += requests.length;
      for (const r of requests) stats.events += r.events.length;
      stats.maxRequests = Math.max(stats.maxRequests, requests.length);
      if (stats.sizes.length < 200_000) {
        stats.sizes.push(requests.length);
        stats.durations.push(ms);
      }
    },
    writerProto,
  );
  for (const name of TIMED) {
    wrap(name, (ms) => {
      const list = (stats.methods[name] ??= []);
      if (list.length < 200_000) list.push(ms);
    });
  }
  const TICK_MS = 5;
  let expected = performance.now() + TICK_MS;
  setInterval(() => {
    const now = performance.now();
    if (stats.lag.length < 200_000) stats.lag.push(Math.max(0, now - expected));
    expected = now + TICK_MS;
  }, TICK_MS).unref();
  process.on("SIGUSR2", () => {
    const snapshot = stats;
    stats = fresh();
    writeFileSync(`${statsFile}.tmp`, JSON.stringify(snapshot));
    renameSync(`${statsFile}.tmp`, statsFile);
  });
}

await main(process.env);
