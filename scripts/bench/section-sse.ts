// SSE fan-out: 100 live clients in one process, a publisher in another POSTing
// 1,000 single events/s; latency is publish (POST sent) → event received,
// compared on the wall clock shared by both processes.
import { join } from "node:path";
import { BENCH_DIR, runJson, spawnListening, withCpu } from "./lib.ts";
import type { PublisherResult } from "./publisher.ts";
import { fmt, type Section } from "./section.ts";
import type { SseClientsResult } from "./sse-clients.ts";
import { startBenchService } from "./service.ts";

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
    try {
      ctx.log(`SSE: connecting ${CLIENTS} clients`);
      const receivers = await spawnListening(
        ["bun", join(BENCH_DIR, "sse-clients.ts"), JSON.stringify({ url: service.url, mode: "paper", clients: CLIENTS })],
        { PATH: process.env.PATH ?? "" },
        /READY (\d+)/,
      );
      try {
        ctx.log(`SSE: publishing ${RATE} events/s`);
        const published = await withCpu(service.pid, () =>
          runJson<PublisherResult>("publisher.ts", { url: service.url, mode: "paper", ratePerSecond: RATE, durationMs: ctx.ms(8000, 3000), connections: 8 }),
        );
        publisher = published.result;
        serviceCores = published.cores;
        // Let the last coalesced writes arrive before asking for the figures.
        await Bun.sleep(500);
        receivers.proc.stdin.write("stop\n");
        await receivers.proc.stdin.flush();
        await Promise.race([receivers.proc.exited, Bun.sleep(10_000)]);
        const line = receivers.output().trim().split("\n").reverse().find((l) => l.startsWith("{"));
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
        ["publish → receive p50 / p90 / p99 / max ms", `${fmt.ms(clients.latencyMs.p50)} / ${fmt.ms(clients.latencyMs.p90)} / ${fmt.ms(p99)} / ${fmt.ms(clients.latencyMs.max)}`],
        ["POST latency p50 / p99 ms", `${fmt.ms(publisher.postLatencyMs.p50)} / ${fmt.ms(publisher.postLatencyMs.p99)}`],
        ["service / receivers / publisher cores", `${fmt.cores(serviceCores)} / ${fmt.cores(clients.receiverCores)} / ${fmt.cores(publisher.generatorCores)}`],
      ],
      targets: [
        { what: `SSE publish→receive p99 (${CLIENTS} clients, ${RATE}/s)`, measured: `${fmt.ms(p99)} ms`, target: "< 10 ms", met: clients.events > 0 && delivered > 0.999 ? p99 < 10 : false },
      ],
      analysis: [
        `Each client's pending events are coalesced into one write every few ms (ZOE_SSE_COALESCE_MS), so the service does about ${CLIENTS} socket writes per coalescing window instead of ${CLIENTS} per event; the latency floor is the POST's group commit plus that window. ${fmt.pct(delivered)} of deliveries arrived.`,
      ],
    };
  },
};
