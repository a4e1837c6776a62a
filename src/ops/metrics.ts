// Prometheus metrics (GET /metrics), with prom-client. Counters and
// histograms are updated where things happen (ingest, flush sends, SSE
// closes); everything that is state (backlog, oldest age, quarantine, SSE
// clients, file sizes, limits) is read at scrape time, so an idle service
// costs nothing between scrapes.
import { statSync } from "node:fs";
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from "prom-client";
import type { Clock } from "../lib/clock.ts";
import type { BuildInfo } from "./build-info.ts";
import type { Hub } from "../stream/hub.ts";
import type { Limits } from "../store/limits.ts";
import { type EventInput, MODES, type Mode } from "../domain/schema.ts";
import { type Sink, type SinkError, wrapSink } from "../flush/sink.ts";
import type { StreamCloseReason } from "../stream/sse.ts";
import type { AppendResult, EventStore } from "../store/store.ts";

export interface MetricsSources {
  store: EventStore;
  hub: Hub;
  clock: Clock;
  limits?: Limits | null;
  quarantine?: { count(mode: Mode): number } | null;
  flusher?: { status(mode: Mode): Record<string, unknown> } | null;
  /** Process metrics (RSS, CPU, event-loop lag, open fds); default true. */
  processMetrics?: boolean;
  /** zoe_build_info's labels. */
  build?: BuildInfo | null;
  /** Readiness as GET /ready answers it (zoe_ready). */
  ready?: (() => boolean) | null;
  /** Whether a remote is configured (zoe_remote_configured); a local-only box never flushes. */
  remoteConfigured?: boolean;
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

function fileSize(path: string): number {
  try {
    return statSync(path).size;
  } catch {
    return 0; // no WAL right after a TRUNCATE checkpoint
  }
}

export function outcomeOf(status: number, code: string): IngestOutcome {
  if (status === 503) return code === "backlog_full" || code === "disk_low" ? "refused" : "unavailable";
  if (status >= 500) return "error";
  // A key (or id) reused for another event: the bot is losing an event, worth its own alert.
  if (status === 409) return "conflict";
  return "invalid";
}

export function createMetrics(sources: MetricsSources): Metrics {
  const { store, hub, clock } = sources;
  const registry = new Registry();
  const registers = [registry];
  if (sources.processMetrics ?? true) {
    collectDefaultMetrics({ register: registry });
    for (const name of MISLEADING_UNDER_BUN) registry.removeSingleMetric(name);
  }
  if (sources.build) {
    const { version, commit, bun, sqlite } = sources.build;
    new Gauge({
      name: "zoe_build_info",
      help: "Always 1; the labels say which build runs (package version, git commit, Bun and SQLite versions)",
      labelNames: ["version", "commit", "bun", "sqlite"],
      registers,
    })
      .labels(version, commit, bun, sqlite)
      .set(1);
  }

  // The ingest path counts in plain numbers, handed to prom-client when a
  // scrape reads the counter: labels() and inc() cost about half a
  // microsecond each, and a request made several (BENCHMARKS.md, budget).
  const acknowledged = { created: 0, duplicate: 0 };
  const acknowledgedEvents = new Map<Mode, { created: number; duplicate: number }>(MODES.map((m) => [m, { created: 0, duplicate: 0 }]));
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
  const serverErrors = new Counter({ name: "zoe_http_server_errors_total", help: "5xx answers on any route, by error code", labelNames: ["code"], registers });
  const sseClosed = new Counter({ name: "zoe_sse_disconnects_total", help: "SSE streams ended, by mode and reason (client, slow = cut off, shutdown)", labelNames: ["mode", "reason"], registers });
  const flushes = new Counter({
    name: "zoe_flush_requests_total",
    help: "Batches sent to the remote, by mode and outcome (ok, or the failure's error code)",
    labelNames: ["mode", "outcome"],
    registers,
  });
  const flushFailures = new Counter({ name: "zoe_flush_failures_total", help: "Failed sends to the remote, by mode", labelNames: ["mode"], registers });
  const flushDuration = new Histogram({ name: "zoe_flush_duration_seconds", help: "Duration of one send to the remote", labelNames: ["mode"], buckets: FLUSH_BUCKETS, registers });
  const flushed = new Counter({
    name: "zoe_flush_events_total",
    help: "Events the remote answered for, by mode and verdict (accepted, duplicate, rejected)",
    labelNames: ["mode", "verdict"],
    registers,
  });

  // Pre-create the label sets so every series exists (at 0) from the first scrape.
  for (const mode of MODES) {
    for (const o of ["created", "duplicate"]) events.labels(mode, o).inc(0);
    flushFailures.labels(mode).inc(0);
  }
  for (const o of ["created", "duplicate", "invalid", "refused", "unavailable", "error"]) requests.labels(o).inc(0);

  const perMode = (name: string, help: string, value: (mode: Mode) => number | null) =>
    new Gauge({
      name,
      help,
      labelNames: ["mode"],
      registers,
      collect() {
        for (const mode of MODES) {
          const v = value(mode);
          if (v !== null) this.labels(mode).set(v);
        }
      },
    });
  const single = (name: string, help: string, value: () => number | null) =>
    new Gauge({
      name,
      help,
      registers,
      collect() {
        const v = value();
        if (v !== null) this.set(v);
      },
    });

  perMode("zoe_backlog_events", "Unflushed events", (m) => store.backlogUsage(m).events);
  perMode("zoe_backlog_bytes", "Unflushed bytes (body + meta + a fixed share per row)", (m) => store.backlogUsage(m).bytes);
  perMode("zoe_oldest_unflushed_age_seconds", "Age of the oldest unflushed event (0 when none)", (m) => {
    const oldest = store.oldestUnflushedAt(m);
    return oldest ? Math.max(0, (clock.now() - Date.parse(oldest)) / 1000) : 0;
  });
  perMode("zoe_last_seq", "Highest seq assigned", (m) => store.lastSeq(m));
  perMode("zoe_sse_clients", "Open SSE streams", (m) => hub.subscriberCount(m));
  if (sources.quarantine) {
    const q = sources.quarantine;
    perMode("zoe_quarantined_events", "Events set aside as poison, awaiting an operator", (m) => q.count(m));
  }
  if (sources.flusher) {
    const f = sources.flusher;
    perMode("zoe_flush_consecutive_failures", "Failed flush attempts since the last success", (m) => Number(f.status(m).consecutive_failures ?? 0));
    perMode("zoe_flush_last_success_timestamp_seconds", "When the last flush succeeded (0: not since start)", (m) => {
      const at = f.status(m).last_success_at;
      return typeof at === "string" ? Date.parse(at) / 1000 : 0;
    });
  }
  if (sources.ready) {
    const ready = sources.ready;
    single("zoe_ready", "1 when GET /ready answers 200 (this instance takes events now)", () => (ready() ? 1 : 0));
  }
  if (sources.remoteConfigured !== undefined) {
    const configured = sources.remoteConfigured ? 1 : 0;
    single("zoe_remote_configured", "1 when a remote (SUPABASE_URL) is configured; 0: events stay local and the backlog only grows", () => configured);
  }
  single("zoe_db_size_bytes", "Size of the SQLite database file", () => (store.path === ":memory:" ? null : fileSize(store.path)));
  single("zoe_wal_size_bytes", "Size of the SQLite write-ahead log", () => (store.path === ":memory:" ? null : fileSize(`${store.path}-wal`)));
  if (sources.limits) {
    const limits = sources.limits;
    single("zoe_backlog_max_events", "Cap on unflushed events (0: none)", () => limits.status().max_backlog_events ?? 0);
    single("zoe_backlog_max_bytes", "Cap on unflushed bytes (0: none)", () => limits.status().max_backlog_bytes ?? 0);
    single("zoe_critical_reserve_events", "Room under the event cap kept for critical events", () => limits.status().critical_reserve_events);
    single("zoe_critical_reserve_bytes", "Room under the byte cap and above the disk floor kept for critical events", () => limits.status().critical_reserve_bytes);
    single("zoe_disk_free_bytes", "Free bytes on the database's filesystem", () => limits.status().free_disk_bytes);
    single("zoe_disk_min_free_bytes", "Free-disk floor (0: none)", () => limits.status().min_free_disk_bytes ?? 0);
    single("zoe_backlog_fill_ratio", "Fullest limit as a fraction of where ordinary events are refused (1: refusing)", () => limits.status().fill_ratio);
    new Gauge({
      name: "zoe_ingest_accepting",
      help: "1 when events of this class are accepted now (ordinary, critical)",
      labelNames: ["class"],
      registers,
      collect() {
        const a = limits.status().accepting;
        this.labels("ordinary").set(a === "all" ? 1 : 0);
        this.labels("critical").set(a === "none" ? 0 : 1);
      },
    });
  }

  return {
    registry,
    contentType: registry.contentType,
    ingested(input, results, ms) {
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
    ingestFailed(status, code) {
      requests.labels(outcomeOf(status, code)).inc();
    },
    serverError(code) {
      serverErrors.labels(code).inc();
    },
    streamClosed(mode, reason) {
      sseClosed.labels(mode, reason).inc();
    },
    instrumentSink(sink) {
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
          flushes.labels(batch.mode, batch.signal.aborted ? "aborted" : typeof code === "string" ? code : "error").inc();
          if (!batch.signal.aborted) flushFailures.labels(batch.mode).inc();
          throw error;
        } finally {
          end();
        }
      });
    },
    text: () => registry.metrics(),
  };
}
