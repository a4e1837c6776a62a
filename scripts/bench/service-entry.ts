// Runs the real service (src/main.ts) with a counter around the store's
// commit, so the benchmark can see how well group commit batches: on SIGUSR2
// it writes {commits, requests, events, commitMs, batch sizes and durations} since the last
// signal to $ZOE_BENCH_STATS_FILE. Nothing else differs from `bun start`.
import { renameSync, writeFileSync } from "node:fs";
import { main } from "../../src/main.ts";
import { EventStore } from "../../src/store.ts";

interface Batch {
  events: unknown[];
}

const statsFile = process.env.ZOE_BENCH_STATS_FILE;
const proto = EventStore.prototype as unknown as { commit?: (batch: Batch[]) => unknown };
const original = proto.commit;
let stats = fresh();

function fresh() {
  return { commits: 0, requests: 0, events: 0, commitMs: 0, maxRequests: 0, sizes: [] as number[], durations: [] as number[] };
}

if (statsFile && typeof original === "function") {
  proto.commit = function (this: unknown, batch: Batch[]) {
    const t0 = performance.now();
    try {
      return original.call(this, batch);
    } finally {
      const ms = performance.now() - t0;
      stats.commitMs += ms;
      stats.commits++;
      stats.requests += batch.length;
      for (const r of batch) stats.events += r.events.length;
      stats.maxRequests = Math.max(stats.maxRequests, batch.length);
      if (stats.sizes.length < 200_000) {
        stats.sizes.push(batch.length);
        stats.durations.push(ms);
      }
    }
  };
  process.on("SIGUSR2", () => {
    const snapshot = stats;
    stats = fresh();
    writeFileSync(`${statsFile}.tmp`, JSON.stringify(snapshot));
    renameSync(`${statsFile}.tmp`, statsFile);
  });
}

await main(process.env);
