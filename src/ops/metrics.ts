// Prometheus metrics (GET /metrics), with prom-client. Counters and
// histograms are updated where things happen (ingest, flush sends, SSE
// closes); everything that is state (backlog, oldest age, quarantine, SSE
// clients, file sizes, limits) is read at scrape time (gauges.ts), so an idle
// service costs nothing between scrapes.
import { Counter, Gauge, Histogram, loadCollectDefaultMetrics, Registry } from "./prom.ts";
import type { BuildInfo } from "./build-info.ts";
import { type GaugeSources, registerStateGauges } from "./gauges.ts";
import { type EventInput, MODES, type Mode } from "../../supabase/functions/_shared/event-schema.ts";
import { type Sink, type SinkError, wrapSink } from "../flush/sink.ts";
import { STREAM_CLOSE_REASONS, type StreamCloseReason } from "../stream/sse.ts";
import type { AppendResult } from "../store/store.ts";

export interface MetricsSources extends GaugeSources {
  /** Process metrics (RSS, CPU, event-loop lag, open fds); default true. */
  processMetrics?: boolean;
  /** zoe_build_info's labels. */
  build?: BuildInfo | null;
  /** The store's id: zoe_build_info's store_id label. */
  storeId?: string | null;
}

/** How an ingest request ended, as a label. */
export type IngestOutcome = "created" | "duplicate" | "conflict" | "invalid" | "refused" | "unavailable" | "error";

export interface Metrics {
  readonly registry: Registry;
  readonly contentType: string;
  /** A request's events were committed (`ms`: handler time). */
  ingested(events: EventInput[], results: AppendResult[], ms: number): void;
  /** An ingest request failed with this HTTP status and error code. */
  ingestFailed(status: number, code: string): void;
  /** A 5xx answer on any route. */
  serverError(code: string): void;
  streamClosed(mode: Mode, reason: StreamCloseReason): void;
  /** The same sink, counting and timing every send. */
  instrumentSink(sink: Sink): Sink;
  /** Registers the process metrics (RSS, CPU, event-loop lag, fds), once; text() does it at the latest. */
  loadProcessMetrics(): Promise<void>;
  text(): Promise<string>;
}

// Ingest runs in well under a millisecond when healthy; the tail is what matters.
const INGEST_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5];
const FLUSH_BUCKETS = [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];

// prom-client's defaults that mislead under Bun: nodejs_version_info reports the
// Node version Bun emulates (not a Node that runs), V8 heap spaces read 0 under
// JavaScriptCore, Bun reports no active handles/requests/resources and emits no
// GC performance entries. zoe_build_info says what runs instead.
const MISLEADING_UNDER_BUN = [
  "nodejs_version_info",
  "nodejs_heap_space_size_total_bytes",
  "nodejs_heap_space_size_used_bytes",
  "nodejs_heap_space_size_available_bytes",
  "nodejs_active_resources",
  "nodejs_active_resources_total",
  "nodejs_active_handles",
  "nodejs_active_handles_total",
  "nodejs_active_requests",
  "nodejs_active_requests_total",
  "nodejs_gc_duration_seconds",
];

/** The 5xx codes the service answers with on its own (not a remote's); others get a series when first seen. */
const SERVER_ERROR_CODES = ["internal", "store_unavailable", "backlog_full", "disk_low"] as const;
const FLUSH_VERDICTS = ["accepted", "duplicate", "rejected"] as const;

export function outcomeOf(status: number, code: string): IngestOutcome {
  if (status === 503) return code === "backlog_full" || code === "disk_low" ? "refused" : "unavailable";
  if (status >= 500) return "error";
  // A key (or id) reused for another event: the bot is losing an event, worth its own alert.
  if (status === 409) return "conflict";
  return "invalid";
}

export function createMetrics(sources: MetricsSources): Metrics {
  const registry = new Registry();
  const registers = [registry];
  let processMetrics: Promise<void> | null = null;
  const loadProcessMetrics = () =>
    (processMetrics ??=
      (sources.processMetrics ?? true)
        ? loadCollectDefaultMetrics().then((collectDefaultMetrics) => {
            // The lag monitor is a timer: at prom-client's 10 ms it woke an idle
            // service 100 times a second, most of its idle CPU. At 100 ms a stall
            // the alert cares about (p99 > 250 ms) still spans several ticks.
            collectDefaultMetrics({ register: registry, eventLoopMonitoringPrecision: 100 });
            for (const name of MISLEADING_UNDER_BUN) registry.removeSingleMetric(name);
          })
        : Promise.resolve());
  if (sources.build) {
    const { version, commit, bun, sqlite } = sources.build;
    const storeId = sources.storeId ?? null;
    new Gauge({
      name: "zoe_build_info",
      help: "Always 1; the labels say which build runs (package version, git commit, Bun and SQLite versions) and on which store (store_id)",
      labelNames:
        storeId === null ? ["version", "commit", "bun", "sqlite"] : ["version", "commit", "bun", "sqlite", "store_id"],
      registers,
    })
      .labels(...[version, commit, bun, sqlite, ...(storeId === null ? [] : [storeId])])
      .set(1);
  }

  const ingest = ingestMetrics(registers);
  const flush = flushMetrics(registers);
  const serverErrors = new Counter({
    name: "zoe_http_server_errors_total",
    help: "5xx answers on any route, by error code",
    labelNames: ["code"],
    registers,
  });
  const sseClosed = new Counter({
    name: "zoe_sse_disconnects_total",
    help: "SSE streams ended, by mode and reason (client, slow = cut off, shutdown)",
    labelNames: ["mode", "reason"],
    registers,
  });
  // Every known label set exists (at 0) from the first scrape: a panel or a
  // rate() over a counter with no series shows "No data" on a fresh box.
  for (const code of SERVER_ERROR_CODES) serverErrors.labels(code).inc(0);
  for (const mode of MODES) for (const reason of STREAM_CLOSE_REASONS) sseClosed.labels(mode, reason).inc(0);
  registerStateGauges(registers, sources);

  return {
    registry,
    contentType: registry.contentType,
    ingested: ingest.ingested,
    ingestFailed: ingest.failed,
    serverError(code) {
      serverErrors.labels(code).inc();
    },
    streamClosed(mode, reason) {
      sseClosed.labels(mode, reason).inc();
    },
    instrumentSink: flush.instrumentSink,
    loadProcessMetrics,
    async text() {
      await loadProcessMetrics();
      return registry.metrics();
    },
  };
}

/** The ingest counters and latency, and what the ingest path calls to update them. */
function ingestMetrics(registers: Registry[]) {
  // The ingest path counts in plain numbers, handed to prom-client when a
  // scrape reads the counter: labels() and inc() cost about half a
  // microsecond each, and a request made several (BENCHMARKS.md, budget).
  const acknowledged = { created: 0, duplicate: 0 };
  const acknowledgedEvents = new Map<Mode, { created: number; duplicate: number }>(
    MODES.map((m) => [m, { created: 0, duplicate: 0 }]),
  );
  const requests = new Counter({
    name: "zoe_ingest_requests_total",
    help: "POST /local/events requests by outcome (created, duplicate, conflict = a key or id reused for another event, invalid, refused = bounded store, unavailable = database, error)",
    labelNames: ["outcome"],
    registers,
    collect() {
      for (const outcome of ["created", "duplicate"] as const) {
        if (acknowledged[outcome] > 0) this.labels(outcome).inc(acknowledged[outcome]);
        acknowledged[outcome] = 0;
      }
    },
  });
  const events = new Counter({
    name: "zoe_ingest_events_total",
    help: "Events in acknowledged ingest requests, by mode and outcome (created or duplicate)",
    labelNames: ["mode", "outcome"],
    registers,
    collect() {
      for (const [mode, n] of acknowledgedEvents) {
        for (const outcome of ["created", "duplicate"] as const) {
          if (n[outcome] > 0) this.labels(mode, outcome).inc(n[outcome]);
          n[outcome] = 0;
        }
      }
    },
  });
  const latency = new Histogram({
    name: "zoe_ingest_duration_seconds",
    help: "Time from reading the request to the commit's acknowledgement, acknowledged ingest requests",
    buckets: INGEST_BUCKETS,
    registers,
  });
  // Pre-create the label sets so every series exists (at 0) from the first scrape.
  for (const mode of MODES) for (const o of ["created", "duplicate"]) events.labels(mode, o).inc(0);
  for (const o of ["created", "duplicate", "conflict", "invalid", "refused", "unavailable", "error"])
    requests.labels(o).inc(0);
  return {
    ingested(input: EventInput[], results: AppendResult[], ms: number): void {
      let fresh = 0;
      for (let i = 0; i < results.length; i++) {
        const n = acknowledgedEvents.get(input[i]!.mode)!;
        if (results[i]!.duplicate) n.duplicate++;
        else {
          n.created++;
          fresh++;
        }
      }
      if (fresh === 0) acknowledged.duplicate++;
      else acknowledged.created++;
      latency.observe(ms / 1000);
    },
    failed(status: number, code: string): void {
      requests.labels(outcomeOf(status, code)).inc();
    },
  };
}

/** Sends to the remote counted by outcome and verdict, and timed, through instrumentSink(). */
function flushMetrics(registers: Registry[]) {
  const flushes = new Counter({
    name: "zoe_flush_requests_total",
    help: "Batches sent to the remote, by mode and outcome (ok, or the failure's error code)",
    labelNames: ["mode", "outcome"],
    registers,
  });
  const flushFailures = new Counter({
    name: "zoe_flush_failures_total",
    help: "Failed sends to the remote, by mode",
    labelNames: ["mode"],
    registers,
  });
  const flushDuration = new Histogram({
    name: "zoe_flush_duration_seconds",
    help: "Duration of one send to the remote",
    labelNames: ["mode"],
    buckets: FLUSH_BUCKETS,
    registers,
  });
  const flushed = new Counter({
    name: "zoe_flush_events_total",
    help: "Events the remote answered for, by mode and verdict (accepted, duplicate, rejected)",
    labelNames: ["mode", "verdict"],
    registers,
  });

  // Every mode's failure, success and verdict series exist (at 0) from the
  // first scrape, for rate() alerts and panels; failures' error codes are
  // the remote's and get a series when they first happen.
  for (const mode of MODES) {
    flushFailures.labels(mode).inc(0);
    flushes.labels(mode, "ok").inc(0);
    for (const verdict of FLUSH_VERDICTS) flushed.labels(mode, verdict).inc(0);
  }
  return {
    instrumentSink(sink: Sink): Sink {
      return wrapSink(sink, async (batch, send) => {
        const end = flushDuration.startTimer({ mode: batch.mode });
        try {
          const result = await send();
          flushes.labels(batch.mode, "ok").inc();
          const verdicts = { accepted: 0, duplicate: 0, rejected: 0 };
          for (const r of result.results) verdicts[r.status]++;
          for (const [verdict, n] of Object.entries(verdicts)) if (n > 0) flushed.labels(batch.mode, verdict).inc(n);
          return result;
        } catch (error) {
          const code = (error as SinkError)?.code;
          flushes
            .labels(batch.mode, batch.signal.aborted ? "aborted" : typeof code === "string" ? code : "error")
            .inc();
          if (!batch.signal.aborted) flushFailures.labels(batch.mode).inc();
          throw error;
        } finally {
          end();
        }
      });
    },
  };
}
