// SSE fan-out: 100 live clients in one process, a publisher in another POSTing
// 1,000 single events/s; latency is publish (POST sent) → event received,
// compared on the wall clock shared by both processes. Then replays sharing
// the loop: ingest at 1,000/s and /health polled, first with no stream, then
// while 50 clients replay a 200,000-event store from seq 0.
import { join } from "node:path";
import { BENCH_DIR, cpuSecondsOf, type LatencySummary, runJson, spawnListening, summarize, withCpu } from "./lib.ts";
import type { PublisherResult } from "./publisher.ts";
import type { ScaleDb } from "./scale-db.ts";
import { type BenchContext, fmt, type Section, type SectionReport } from "./section.ts";
import type { SseClientsResult } from "./sse-clients.ts";
import type { SseReplayResult } from "./sse-replay.ts";
import { type BenchService, type CommitStats, startBenchService } from "./service.ts";

const CLIENTS = 100;
const RATE = 1000;
const REPLAY_STREAMS = 50;

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
    const replays = await replaysUnderLoad(ctx);
    ctx.results.sse = { clients, publisher, serviceCores, replays };
    const expected = publisher.ok * CLIENTS;
    const delivered = clients.events / Math.max(1, expected);
    const p99 = clients.latencyMs.p99;
    const replay = replayReport(replays);
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
        ...replay.table,
      ],
      targets: [
        {
          what: `SSE publish→receive p99 (${CLIENTS} clients, ${RATE}/s)`,
          measured: `${fmt.ms(p99)} ms`,
          target: "< 10 ms",
          met: clients.events > 0 && delivered > 0.999 ? p99 < 10 : false,
        },
        ...replay.targets,
      ],
      analysis: [
        `Every event reaches ${CLIENTS} sockets: ${fmt.int(publisher.achievedPerSecond * CLIENTS)} deliveries/s cost the service ${fmt.cores(serviceCores)} cores (${fmt.ms((serviceCores * 1e6) / Math.max(1, publisher.achievedPerSecond * CLIENTS))} µs per delivery, POST and commit included). Each event is serialised once for all streams, and each stream coalesces what arrives within ZOE_SSE_COALESCE_MS (2 ms) into one write, so writes per client stay near one per window instead of one per event.`,
        `The latency floor is the POST (p50 ${fmt.ms(publisher.postLatencyMs.p50)} ms) plus the coalescing window; the tail (p99 ${fmt.ms(p99)} ms) follows the POST tail (p99 ${fmt.ms(publisher.postLatencyMs.p99)} ms: a commit or a burst of 100 writes holding the event loop) and the receivers' own process (${fmt.cores(clients.receiverCores)} cores parsing 100 streams). ${fmt.pct(delivered)} of deliveries arrived; ${clients.ended === 0 ? "no client was cut off" : `${clients.ended} clients were cut off or failed`}.`,
        ...replay.analysis,
      ],
    };
  },
};

interface LoadWindow {
  publisher: PublisherResult;
  health: LatencySummary & { failures: number };
  /** The service's own figures over the window (event-loop lag, commits). */
  stats: CommitStats | null;
}

interface ReplayMeasurements {
  events: number;
  idle: LoadWindow;
  loaded: LoadWindow;
  replay: SseReplayResult;
  /** Wall time from the replays' start to the last one's end. */
  replayMs: number;
  /** The publishing window ended before the last replay did: the load ran under replays throughout. */
  covered: boolean;
  serviceCores: number;
  rssPeakMb: number;
}

/** GET /health every 20 ms until `stop` is aborted; a failure or a 5 s timeout counts as 5,000 ms. */
async function probeHealth(url: string, stop: AbortSignal): Promise<LoadWindow["health"]> {
  const ms: number[] = [];
  let failures = 0;
  while (!stop.aborted) {
    const t0 = performance.now();
    try {
      const res = await fetch(`${url}/health`, { signal: AbortSignal.timeout(5000) });
      await res.arrayBuffer();
      if (res.status !== 200) failures++;
      ms.push(performance.now() - t0);
    } catch {
      failures++;
      ms.push(5000);
    }
    await Bun.sleep(20);
  }
  return { ...summarize(ms), failures };
}

/** Paced single-event POSTs (mode live) and /health polling, for `durationMs`. */
async function loadWindow(service: BenchService, durationMs: number): Promise<LoadWindow> {
  const url = service.url;
  await service.commitStats(); // reset: the figures cover this window
  const stop = new AbortController();
  const health = probeHealth(url, stop.signal);
  try {
    const publisher = await runJson<PublisherResult>("publisher.ts", {
      url,
      mode: "live",
      ratePerSecond: RATE,
      durationMs,
      connections: 8,
    });
    const stats = await service.commitStats();
    return { publisher, health: await (stop.abort(), health), stats };
  } finally {
    stop.abort();
  }
}

async function replaysUnderLoad(ctx: BenchContext): Promise<ReplayMeasurements> {
  const events = ctx.quick ? 50_000 : 200_000;
  // Its own cache directory: scale-db.ts keeps one build per directory.
  const db = await runJson<ScaleDb>("scale-db.ts", { flushed: events, unflushed: 0, dir: join(ctx.dir, "sse-replay") });
  const service = await startBenchService(ctx.dir, "sse-replay", { ZOE_DB_PATH: db.path, ZOE_RETENTION_DAYS: "3650" });
  try {
    const windowMs = ctx.ms(8000, 3000);
    ctx.log("SSE replays: ingest and /health with no stream open");
    const idle = await loadWindow(service, windowMs);
    ctx.log(`SSE replays: the same while ${REPLAY_STREAMS} clients replay ${fmt.int(events)} events`);
    let rssPeakMb = service.memory().rssMb;
    const sampler = setInterval(() => (rssPeakMb = Math.max(rssPeakMb, service.memory().rssMb)), 100);
    const c0 = cpuSecondsOf(service.pid);
    const t0 = performance.now();
    try {
      const replaying = runJson<SseReplayResult>(
        "sse-replay.ts",
        {
          url: service.url,
          mode: "paper",
          after: 0,
          untilSeq: db.lastSeq,
          timeoutMs: 300_000,
          streams: REPLAY_STREAMS,
        },
        {},
        330_000,
      );
      const loaded = await loadWindow(service, windowMs);
      const windowEnd = performance.now();
      const replay = await replaying;
      const replayMs = performance.now() - t0;
      const serviceCores = (cpuSecondsOf(service.pid) - c0) / (replayMs / 1000);
      return {
        events,
        idle,
        loaded,
        replay,
        replayMs,
        covered: windowEnd < t0 + replayMs - 100,
        serviceCores,
        rssPeakMb,
      };
    } finally {
      clearInterval(sampler);
    }
  } finally {
    ctx.memory.push({ label: `sse (${REPLAY_STREAMS} replays of ${fmt.int(events)})`, ...service.memory() });
    await service.stop();
  }
}

function replayReport(m: ReplayMeasurements): Pick<SectionReport, "table" | "targets" | "analysis"> {
  const { idle, loaded } = m;
  const complete = m.replay.all.filter((r) => r.complete && r.events === m.events).length;
  const slowest = Math.max(...m.replay.all.map((r) => r.totalMs));
  const mib = m.replay.all.reduce((a, r) => a + r.bytes, 0) / 2 ** 20;
  const ingest = (w: LoadWindow) =>
    `${fmt.ms(w.publisher.postLatencyMs.p50)} / ${fmt.ms(w.publisher.postLatencyMs.p99)} / ${fmt.ms(w.publisher.postLatencyMs.max)} (${fmt.int(w.publisher.ok)} of ${fmt.int(w.publisher.sent)} ok)`;
  const lag = (w: LoadWindow) =>
    w.stats ? `${fmt.ms(w.stats.eventLoopLagMs.p99)} / ${fmt.ms(w.stats.eventLoopLagMs.max)}` : "n/a";
  const health = (w: LoadWindow) =>
    `${fmt.ms(w.health.p50)} / ${fmt.ms(w.health.p99)} / ${fmt.ms(w.health.max)}${w.health.failures ? ` (${w.health.failures} failed)` : ""}`;
  const p99Ratio = loaded.publisher.postLatencyMs.p99 / idle.publisher.postLatencyMs.p99;
  const maxRatio = loaded.publisher.postLatencyMs.max / idle.publisher.postLatencyMs.max;
  const what = `${REPLAY_STREAMS} replays of ${fmt.int(m.events)}`;
  return {
    table: [
      [`ingest ${RATE}/s p50 / p99 / max ms: no stream`, ingest(idle)],
      [`ingest ${RATE}/s p50 / p99 / max ms: ${what}`, ingest(loaded)],
      ["/health p50 / p99 / max ms: no stream", health(idle)],
      ["service event-loop lag p99 / max ms: no stream", lag(idle)],
      [`service event-loop lag p99 / max ms: ${what}`, lag(loaded)],
      [`/health p50 / p99 / max ms: ${what}`, health(loaded)],
      [
        `${what}: complete; slowest; all`,
        `${complete} of ${REPLAY_STREAMS}; ${(slowest / 1000).toFixed(1)} s; ${(m.replayMs / 1000).toFixed(1)} s (${fmt.int(mib)} MiB, ${fmt.int((m.events * REPLAY_STREAMS) / (m.replayMs / 1000))} ev/s)`,
      ],
      [
        `${what}: service cores; RSS peak MB`,
        `${fmt.cores(m.serviceCores)} (clients ${fmt.cores(m.replay.clientCores)}); ${fmt.int(m.rssPeakMb)}`,
      ],
    ],
    targets: [
      {
        what: `ingest p99 under ${what} (vs no stream)`,
        measured: `${fmt.ms(loaded.publisher.postLatencyMs.p99)} ms (${fmt.x(p99Ratio)})`,
        target: "≤ 2× and < 250 ms",
        met: m.covered ? p99Ratio <= 2 && loaded.publisher.postLatencyMs.p99 < 250 : null,
      },
      {
        what: `ingest max under ${what} (vs no stream)`,
        measured: `${fmt.ms(loaded.publisher.postLatencyMs.max)} ms (${fmt.x(maxRatio)})`,
        target: "≤ 2× and < 250 ms",
        met: m.covered ? maxRatio <= 2 && loaded.publisher.postLatencyMs.max < 250 : null,
      },
      {
        what: `/health under ${what}`,
        measured: `max ${fmt.ms(loaded.health.max)} ms`,
        target: "< 100 ms",
        met: m.covered ? loaded.health.max < 100 && loaded.health.failures === 0 : null,
      },
      {
        what: `${what} complete`,
        measured: `${complete} of ${REPLAY_STREAMS} in ${(m.replayMs / 1000).toFixed(1)} s`,
        target: "all",
        met: complete === REPLAY_STREAMS,
      },
    ],
    analysis: [
      `Replays share the service: each stream asks for its next page (128 rows, 64 KiB) only when its socket has taken the previous one, and a worker thread with its own read-only connection reads and frames the pages of all replaying streams in turns, so the event loop that answers ingest and /health only writes the bytes out. Ingest and /health were measured over the same ${fmt.int(idle.publisher.achievedPerSecond)} ev/s window with no stream open and while ${what} ran${m.covered ? "" : " (the replays ended before the window did: the loaded figures are only partly under replay)"}.`,
    ],
  };
}
