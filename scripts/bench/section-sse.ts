// SSE fan-out: 100 live clients in one process, a publisher in another POSTing
// 1,000 single events/s; latency is publish (POST sent) → event received,
// compared on the wall clock shared by both processes.
import { join } from "node:path";
import { BENCH_DIR, runJson, spawnListening, withCpu } from "./lib.ts";
import type { PublisherResult } from "./publisher.ts";
import { fmt, type Section } from "./section.ts";
import type { SseClientsResult } from "./sse-clients.ts";
import { type CommitStats, startBenchService } from "./service.ts";

const CLIENTS = 100;
const RATE = 1000;

export const sseSection: Section = {
  id: "sse",
  title: `SSE fan-out (${CLIENTS} clients, ${RATE.toLocaleString("en-US")} events/s)`,
  async run(ctx) {
    const service = await startBenchService(ctx.dir, "sse");
    let clients: SseClientsResult;
    let publisher: PublisherResult;
    let serviceCores: number;
    let stats: CommitStats | null = null;
    try {
      ctx.log(`SSE: connecting ${CLIENTS} clients`);
      const receivers = await spawnListening(
        [
          "bun",
          join(BENCH_DIR, "sse-clients.ts"),
          JSON.stringify({ url: service.url, mode: "paper", clients: CLIENTS }),
        ],
        { PATH: process.env.PATH ?? "" },
        /READY (\d+)/,
      );
      try {
        ctx.log(`SSE: publishing ${RATE} events/s`);
        await service.commitStats(); // reset: the figures below cover the publishing window
        const published = await withCpu(service.pid, () =>
          runJson<PublisherResult>("publisher.ts", {
            url: service.url,
            mode: "paper",
            ratePerSecond: RATE,
            durationMs: ctx.ms(8000, 3000),
            connections: 8,
          }),
        );
        publisher = published.result;
        serviceCores = published.cores;
        stats = await service.commitStats();
        // Let the last coalesced writes arrive before asking for the figures.
        await Bun.sleep(500);
        receivers.proc.stdin.write("stop\n");
        await receivers.proc.stdin.flush();
        await Promise.race([receivers.proc.exited, Bun.sleep(10_000)]);
        const line = receivers
          .output()
          .trim()
          .split("\n")
          .reverse()
          .find((l) => l.startsWith("{"));
        if (!line) throw new Error(`SSE clients gave no result:\n${receivers.output()}`);
        clients = JSON.parse(line) as SseClientsResult;
      } finally {
        await receivers.stop();
      }
    } finally {
      ctx.memory.push({ label: `sse (${CLIENTS} clients)`, ...service.memory() });
      await service.stop();
    }
    ctx.results.sse = { clients, publisher, serviceCores };
    const expected = publisher.ok * CLIENTS;
    const delivered = clients.events / Math.max(1, expected);
    const p99 = clients.latencyMs.p99;
    return {
      table: [
        ["figure", "value"],
        ["clients connected / cut off", `${clients.connected} / ${clients.ended}`],
        ["events published (achieved rate)", `${fmt.int(publisher.ok)} (${fmt.int(publisher.achievedPerSecond)}/s)`],
        ["deliveries received / expected", `${fmt.int(clients.events)} / ${fmt.int(expected)} (${fmt.pct(delivered)})`],
        [
          "publish → receive p50 / p90 / p99 / max ms",
          `${fmt.ms(clients.latencyMs.p50)} / ${fmt.ms(clients.latencyMs.p90)} / ${fmt.ms(p99)} / ${fmt.ms(clients.latencyMs.max)}`,
        ],
        [
          "POST latency p50 / p99 ms",
          `${fmt.ms(publisher.postLatencyMs.p50)} / ${fmt.ms(publisher.postLatencyMs.p99)}`,
        ],
        [
          "service event-loop lag p99 / max ms; commit p99 / max ms",
          stats
            ? `${fmt.ms(stats.eventLoopLagMs.p99)} / ${fmt.ms(stats.eventLoopLagMs.max)}; ${fmt.ms(stats.commitDurationMs.p99)} / ${fmt.ms(stats.commitDurationMs.max)}`
            : "n/a",
        ],
        [
          "service / receivers / publisher cores",
          `${fmt.cores(serviceCores)} / ${fmt.cores(clients.receiverCores)} / ${fmt.cores(publisher.generatorCores)}`,
        ],
      ],
      targets: [
        {
          what: `SSE publish→receive p99 (${CLIENTS} clients, ${RATE}/s)`,
          measured: `${fmt.ms(p99)} ms`,
          target: "< 10 ms",
          met: clients.events > 0 && delivered > 0.999 ? p99 < 10 : false,
        },
      ],
      analysis: [
        `Every event reaches ${CLIENTS} sockets: ${fmt.int(publisher.achievedPerSecond * CLIENTS)} deliveries/s cost the service ${fmt.cores(serviceCores)} cores (${fmt.ms((serviceCores * 1e6) / Math.max(1, publisher.achievedPerSecond * CLIENTS))} µs per delivery, POST and commit included). Each event is serialised once for all streams, and each stream coalesces what arrives within ZOE_SSE_COALESCE_MS (2 ms) into one write, so writes per client stay near one per window instead of one per event.`,
        `The latency floor is the POST (p50 ${fmt.ms(publisher.postLatencyMs.p50)} ms) plus the coalescing window; the tail (p99 ${fmt.ms(p99)} ms) follows the POST tail (p99 ${fmt.ms(publisher.postLatencyMs.p99)} ms: a commit or a burst of 100 writes holding the event loop) and the receivers' own process (${fmt.cores(clients.receiverCores)} cores parsing 100 streams). ${fmt.pct(delivered)} of deliveries arrived; ${clients.ended === 0 ? "no client was cut off" : `${clients.ended} clients were cut off or failed`}.`,
      ],
    };
  },
};
