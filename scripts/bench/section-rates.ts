// At the bot's rates: not saturation but the 10-1,000 events/s a trading bot
// emits, on a box whose CPU belongs to the trading loop. The Python client
// (scripts/bench/rates-client.py, delivery helper, spool FULL) emits at a
// steady rate into the real service (defaults, no remote) while one SSE
// client follows the stream; each process's CPU comes from /proc (all
// threads). Next to it, in the same run: the seed's design (the bot writing
// SQLite in-process, one commit per event, FULL and NORMAL) in the same paced
// loop, and direct single-event POSTs at 1,000/s against the service and the
// naive Elysia server. ZOE_BENCH_IDLE_S / ZOE_BENCH_RATES_S shorten the windows.
import { join } from "node:path";
import { BENCH_DIR, runJson, spawnListening, withCpu } from "./lib.ts";
import type { PublisherResult } from "./publisher.ts";
import { fmt, type Section, type TargetCheck } from "./section.ts";
import { startBenchService } from "./service.ts";
import type { SseMark } from "./sse-clients.ts";

interface ChainPhase {
  rate: number;
  events: number;
  seconds: number;
  bot_cpu: number;
  helper_cpu: number;
  service_cpu: number;
  requests: number;
  delivered: number;
  left: number;
}

interface ChainResult {
  phases: ChainPhase[];
  bot_mb: number;
  helper_mb: number;
}

interface SeedResult {
  phases: { rate: number; events: number; seconds: number; cpu: number }[];
  peak_mb: number;
}

const RATES = [100, 1000];
const CRITICAL_EVERY = 20;
const IDLE_LIMIT = 0.002; // of a core, per process

async function python<T>(args: unknown, timeoutMs: number): Promise<T> {
  return runJson<T>("rates-client.py", args, {}, timeoutMs, "python3");
}

const seconds = (name: string, full: number, quick: number, isQuick: boolean) => {
  const v = Number(process.env[name]);
  return Number.isFinite(v) && v > 0 ? v : isQuick ? quick : full;
};

const us = (n: number) => (Number.isFinite(n) ? (n < 100 ? n.toFixed(1) : fmt.int(n)) : "n/a");
const pctCore = (n: number) => (Number.isFinite(n) ? `${(n * 100).toFixed(2)}%` : "n/a");

export const ratesSection: Section = {
  id: "rates",
  title: "At the bot's rates (Python client, 100 and 1,000 events/s, idle)",
  unavailable: () => (Bun.which("python3") ? null : "python3 not found"),
  async run(ctx) {
    const idleS = seconds("ZOE_BENCH_IDLE_S", 60, 10, ctx.quick);
    const rateS = seconds("ZOE_BENCH_RATES_S", 15, 5, ctx.quick);
    const phases = [{ rate: 0, seconds: idleS }, ...RATES.map((rate) => ({ rate, seconds: rateS }))];
    // No commit counters: their 5 ms event-loop-lag timer would be most of an idle service's CPU.
    const service = await startBenchService(ctx.dir, "rates", { ZOE_BENCH_STATS_FILE: "" });
    const chain: { phase: ChainPhase; sse: SseMark; peakMb: { bot: number; helper: number } }[] = [];
    let direct: { result: PublisherResult; cores: number };
    try {
      const receiver = await spawnListening(
        ["bun", join(BENCH_DIR, "sse-clients.ts"), JSON.stringify({ url: service.url, mode: "paper", clients: 1 })],
        { PATH: process.env.PATH ?? "" },
        /READY (\d+)/,
      );
      let marks = 0;
      const mark = async (): Promise<SseMark> => {
        marks++;
        receiver.proc.stdin.write("mark\n");
        await receiver.proc.stdin.flush();
        const deadline = performance.now() + 5000;
        for (;;) {
          const line = receiver
            .output()
            .split("\n")
            .find((l) => l.startsWith(`{"mark":${marks},`));
          if (line) return JSON.parse(line) as SseMark;
          if (performance.now() > deadline) throw new Error("the SSE receiver did not answer a mark");
          await Bun.sleep(20);
        }
      };
      try {
        for (const phase of phases) {
          ctx.log(`rates: Python client, ${phase.rate ? `${phase.rate} events/s` : "idle"}, ${phase.seconds} s`);
          await mark();
          const r = await python<ChainResult>(
            {
              what: "chain",
              url: service.url,
              dir: ctx.dir,
              service_pid: service.pid,
              phases: [phase],
              critical_every: CRITICAL_EVERY,
            },
            (phase.seconds + 60) * 1000,
          );
          await Bun.sleep(200); // the last events' SSE writes
          chain.push({ phase: r.phases[0]!, sse: await mark(), peakMb: { bot: r.bot_mb, helper: r.helper_mb } });
        }
        ctx.log("rates: direct single-event POSTs at 1,000/s into the service");
        direct = await withCpu(service.pid, () =>
          runJson<PublisherResult>("publisher.ts", {
            url: service.url,
            mode: "paper",
            ratePerSecond: 1000,
            durationMs: rateS * 1000,
            connections: 4,
          }),
        );
      } finally {
        await receiver.stop();
      }
    } finally {
      ctx.memory.push({ label: "rates (Python client, direct POSTs)", ...service.memory() });
      await service.stop();
    }
    ctx.log("rates: direct single-event POSTs at 1,000/s into the naive Elysia server");
    const naive = await spawnListening(
      ["bun", join(BENCH_DIR, "naive-elysia.ts"), JSON.stringify({ path: join(ctx.dir, "rates-naive.db") })],
      { PATH: process.env.PATH ?? "" },
      /listening on (http:\/\/\S+)/,
    );
    let naiveRun: { result: PublisherResult; cores: number };
    try {
      naiveRun = await withCpu(naive.proc.pid, () =>
        runJson<PublisherResult>("publisher.ts", {
          url: naive.url,
          mode: "paper",
          ratePerSecond: 1000,
          durationMs: rateS * 1000,
          connections: 4,
        }),
      );
    } finally {
      await naive.stop();
    }
    const seed: Record<string, SeedResult> = {};
    for (const level of ["FULL", "NORMAL"]) {
      ctx.log(`rates: the seed's in-process SQLite (synchronous=${level})`);
      seed[level] = await python<SeedResult>(
        { what: "seed", dir: ctx.dir, synchronous: level, phases: RATES.map((rate) => ({ rate, seconds: rateS })) },
        (rateS * RATES.length + 60) * 1000,
      );
    }
    ctx.results.rates = { chain, seed, direct: direct!, naive: naiveRun };

    const total = (p: ChainPhase) => p.bot_cpu + p.helper_cpu + p.service_cpu;
    const perEvent = (p: ChainPhase) => (total(p) * 1e6) / Math.max(1, p.events);
    const seedPerEvent = (level: string, rate: number) => {
      const p = seed[level]!.phases.find((x) => x.rate === rate)!;
      return (p.cpu * 1e6) / Math.max(1, p.events);
    };
    const at = (rate: number) => chain.find((c) => c.phase.rate === rate)!;
    const idle = at(0).phase;
    const core = (cpu: number, p: ChainPhase) => cpu / p.seconds;

    const table: string[][] = [
      [
        "rate",
        "events",
        "bot / helper / service, % of a core",
        "whole chain µs/event",
        "seed in-process FULL / NORMAL µs/event",
        "events per request",
        "emit → SSE p50 / p99 ms",
        "critical → SSE p50 / p99 ms",
      ],
    ];
    for (const c of chain) {
      const p = c.phase;
      const rated = p.rate > 0;
      table.push([
        rated ? `${fmt.int(p.rate)}/s` : `idle (${fmt.int(p.seconds)} s, client connected)`,
        fmt.int(p.events),
        `${pctCore(core(p.bot_cpu, p))} / ${pctCore(core(p.helper_cpu, p))} / ${pctCore(core(p.service_cpu, p))}`,
        rated ? us(perEvent(p)) : "—",
        rated ? `${us(seedPerEvent("FULL", p.rate))} / ${us(seedPerEvent("NORMAL", p.rate))}` : "—",
        rated ? (p.delivered / Math.max(1, p.requests)).toFixed(2) : "—",
        rated ? `${fmt.ms(c.sse.latencyMs.p50)} / ${fmt.ms(c.sse.latencyMs.p99)}` : "—",
        rated ? `${fmt.ms(c.sse.criticalLatencyMs.p50)} / ${fmt.ms(c.sse.criticalLatencyMs.p99)}` : "—",
      ]);
    }
    const directUs = (r: { result: PublisherResult; cores: number }) =>
      (r.cores * 1e6) / Math.max(1, r.result.achievedPerSecond);
    table.push(
      [
        "direct single-event POSTs, 1,000/s (4 conns): service / naive Elysia",
        `${fmt.int(direct!.result.ok)} / ${fmt.int(naiveRun.result.ok)}`,
        `service ${pctCore(direct!.cores)} / naive ${pctCore(naiveRun.cores)}`,
        `${us(directUs(direct!))} / ${us(directUs(naiveRun))} (server only)`,
        "",
        "1",
        `POST p99 ${fmt.ms(direct!.result.postLatencyMs.p99)} / ${fmt.ms(naiveRun.result.postLatencyMs.p99)}`,
        "",
      ],
      [
        "peak RSS MB: bot / helper (largest phase); seed FULL",
        "",
        `${fmt.int(Math.max(...chain.map((c) => c.peakMb.bot)))} / ${fmt.int(Math.max(...chain.map((c) => c.peakMb.helper)))}; ${fmt.int(seed.FULL!.peak_mb)}`,
        "",
        "",
        "",
        "",
        "",
      ],
    );

    const targets: TargetCheck[] = [];
    for (const rate of RATES) {
      const p = at(rate).phase;
      const limit = rate >= 1000 ? 1 : 1.5;
      const ratio = perEvent(p) / seedPerEvent("FULL", rate);
      targets.push({
        what: `whole chain CPU per event at ${fmt.int(rate)} events/s (bot + helper + service) / seed in-process FULL`,
        measured: `${fmt.x(ratio)} (${us(perEvent(p))} vs ${us(seedPerEvent("FULL", rate))} µs)`,
        target: `≤ ${limit}×`,
        met: p.left === 0 ? ratio <= limit : false,
      });
    }
    const idleWorst = Math.max(core(idle.bot_cpu, idle), core(idle.helper_cpu, idle), core(idle.service_cpu, idle));
    targets.push(
      {
        what: "idle (client connected, SSE follower), each process",
        measured: `bot ${pctCore(core(idle.bot_cpu, idle))}, helper ${pctCore(core(idle.helper_cpu, idle))}, service ${pctCore(core(idle.service_cpu, idle))} of a core`,
        target: "≤ 0.20% of a core",
        met: idleWorst <= IDLE_LIMIT,
      },
      ...RATES.map((rate) => ({
        what: `emit → visible on a local SSE stream p99 at ${fmt.int(rate)}/s`,
        measured: `${fmt.ms(at(rate).sse.latencyMs.p99)} ms`,
        target: "≤ 50 ms",
        met: at(rate).sse.latencyMs.count > 0 ? at(rate).sse.latencyMs.p99 <= 50 : null,
      })),
      ...RATES.map((rate) => ({
        what: `critical event → visible on SSE p99 at ${fmt.int(rate)}/s`,
        measured: `${fmt.ms(at(rate).sse.criticalLatencyMs.p99)} ms`,
        target: "≤ 10 ms",
        met: at(rate).sse.criticalLatencyMs.count > 0 ? at(rate).sse.criticalLatencyMs.p99 <= 10 : null,
      })),
      {
        what: "direct single-event POSTs at 1,000/s: service CPU / naive Elysia",
        measured: `${fmt.x(direct!.cores / naiveRun.cores)} (${pctCore(direct!.cores)} vs ${pctCore(naiveRun.cores)} of a core)`,
        target: "≤ 1×",
        met: direct!.result.errors === 0 ? direct!.cores <= naiveRun.cores : false,
      },
    );
    const p1k = at(1000).phase;
    return {
      table,
      targets,
      analysis: [
        `CPU from /proc/<pid>/stat (utime + stime of every thread) over each window: the bot's own process (the paced loop and emit()), its delivery helper (a child process: spool commit, HTTP to the service) and the service. At 1,000/s the chain spent ${us(perEvent(p1k))} µs per event: bot ${us((p1k.bot_cpu * 1e6) / p1k.events)}, helper ${us((p1k.helper_cpu * 1e6) / p1k.events)}, service ${us((p1k.service_cpu * 1e6) / p1k.events)}, with ${(p1k.delivered / Math.max(1, p1k.requests)).toFixed(2)} events per request (${fmt.int(p1k.requests)} requests).`,
        `Per request (the fixed cost batching amortises): at 100/s the helper spent ${us((at(100).phase.helper_cpu * 1e6) / Math.max(1, at(100).phase.requests))} µs and the service ${us((at(100).phase.service_cpu * 1e6) / Math.max(1, at(100).phase.requests))} µs (${(at(100).phase.delivered / Math.max(1, at(100).phase.requests)).toFixed(2)} events each); at 1,000/s ${us((p1k.helper_cpu * 1e6) / Math.max(1, p1k.requests))} and ${us((p1k.service_cpu * 1e6) / Math.max(1, p1k.requests))} µs. Each request costs the helper a wake-up, one spool commit (an fsync at FULL), the HTTP round trip and the spool removal; the service an HTTP request, one transaction and one fdatasync of its WAL (on the loop when the request is alone) and a share of the checkpoints (two fsyncs every 32 commits). The helper lingers 20 ms after the first event of a batch; critical events (every ${CRITICAL_EVERY}th here) end the linger, so batches are smaller than with fills at a bot's real rate.`,
        `The seed's design pays one SQLite commit (and at FULL one fsync of the WAL) per event inside the bot's process; the same paced loop costs it ${us(seedPerEvent("FULL", 1000))} µs per event at FULL and ${us(seedPerEvent("NORMAL", 1000))} at NORMAL at 1,000/s.`,
        `Every ${CRITICAL_EVERY}th event is a BUY_FILLED (critical): the helper sends it at once, without the linger, so its latency to the SSE stream is one spool commit, one POST and the service's commit.`,
      ],
    };
  },
};
