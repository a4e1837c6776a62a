// The gauges of GET /metrics that are state (backlog, oldest age, quarantine,
// SSE clients, flush health, file sizes, readiness, limits): each is read at
// scrape time from its source, so an idle service costs nothing between
// scrapes. metrics.ts registers them next to its counters.
import { statSync } from "node:fs";
import { Counter, Gauge, type Registry } from "./prom.ts";
import { MODES, type Mode } from "../../supabase/functions/_shared/event-schema.ts";
import type { Limits } from "../store/limits.ts";
import type { Clock } from "../lib/clock.ts";
import type { EventStore } from "../store/store.ts";
import type { Hub } from "../stream/hub.ts";

/** Where the state gauges read; an absent source leaves its gauges out. */
export interface GaugeSources {
  store: EventStore;
  hub: Hub;
  clock: Clock;
  limits?: Limits | null;
  quarantine?: { count(mode: Mode): number } | null;
  flusher?: { status(mode: Mode): Record<string, unknown> } | null;
  /** Readiness as GET /ready answers it (zoe_ready). */
  ready?: (() => boolean) | null;
  /** Whether a remote is configured (zoe_remote_configured); a local-only box never flushes. */
  remoteConfigured?: boolean;
  /** The writers of each mode as the remote reports them (src/flush/writers.ts). */
  writers?: { writers(mode: Mode): number; detections(mode: Mode): number } | null;
}

function fileSize(path: string): number {
  try {
    return statSync(path).size;
  } catch {
    return 0; // no WAL right after a TRUNCATE checkpoint
  }
}

/** A gauge per mode (a null value leaves that mode's series out of the scrape). */
function perModeGauge(registers: Registry[], name: string, help: string, value: (mode: Mode) => number | null): void {
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
}

function singleGauge(registers: Registry[], name: string, help: string, value: () => number | null): void {
  new Gauge({
    name,
    help,
    registers,
    collect() {
      const v = value();
      if (v !== null) this.set(v);
    },
  });
}

/** Every state gauge the sources allow (no flusher: no flush gauges, and so on). */
export function registerStateGauges(registers: Registry[], sources: GaugeSources): void {
  const { store, hub, clock } = sources;
  const perMode = (name: string, help: string, value: (mode: Mode) => number | null) =>
    perModeGauge(registers, name, help, value);
  const single = (name: string, help: string, value: () => number | null) => singleGauge(registers, name, help, value);
  perMode("zoe_backlog_events", "Unflushed events", (m) => store.backlogUsage(m).events);
  perMode(
    "zoe_backlog_bytes",
    "Unflushed bytes (body + meta + a fixed share per row)",
    (m) => store.backlogUsage(m).bytes,
  );
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
    perMode("zoe_flush_consecutive_failures", "Failed flush attempts since the last success", (m) =>
      Number(f.status(m).consecutive_failures ?? 0),
    );
    perMode("zoe_flush_last_success_timestamp_seconds", "When the last flush succeeded (0: not since start)", (m) => {
      const at = f.status(m).last_success_at;
      return typeof at === "string" ? Date.parse(at) / 1000 : 0;
    });
  }
  if (sources.writers) {
    const w = sources.writers;
    perMode(
      "zoe_mode_writers",
      "Stores writing this mode as the remote sees it: 2 while a second writer was seen in the last 10 minutes",
      (m) => w.writers(m),
    );
    new Counter({
      name: "zoe_second_writer_total",
      help: "Times the remote reported a second store writing this mode (distinct detections since start)",
      labelNames: ["mode"],
      registers,
      collect() {
        this.reset();
        for (const mode of MODES) this.labels(mode).inc(w.detections(mode));
      },
    });
  }
  if (sources.ready) {
    const ready = sources.ready;
    single("zoe_ready", "1 when GET /ready answers 200 (this instance takes events now)", () => (ready() ? 1 : 0));
  }
  if (sources.remoteConfigured !== undefined) {
    const configured = sources.remoteConfigured ? 1 : 0;
    single(
      "zoe_remote_configured",
      "1 when a remote (SUPABASE_URL) is configured; 0: events stay local and the backlog only grows",
      () => configured,
    );
  }
  single("zoe_db_size_bytes", "Size of the SQLite database file", () =>
    store.path === ":memory:" ? null : fileSize(store.path),
  );
  single("zoe_wal_size_bytes", "Size of the SQLite write-ahead log", () =>
    store.path === ":memory:" ? null : fileSize(`${store.path}-wal`),
  );
  if (sources.limits) registerLimitGauges(registers, sources.limits);
}

/** The bounded store's caps, reserves, free disk and fill, and what it accepts now. */
function registerLimitGauges(registers: Registry[], limits: Limits): void {
  const single = (name: string, help: string, value: () => number | null) => singleGauge(registers, name, help, value);
  single("zoe_backlog_max_events", "Cap on unflushed events (0: none)", () => limits.status().max_backlog_events ?? 0);
  single("zoe_backlog_max_bytes", "Cap on unflushed bytes (0: none)", () => limits.status().max_backlog_bytes ?? 0);
  single(
    "zoe_critical_reserve_events",
    "Room under the event cap kept for critical events",
    () => limits.status().critical_reserve_events,
  );
  single(
    "zoe_critical_reserve_bytes",
    "Room under the byte cap and above the disk floor kept for critical events",
    () => limits.status().critical_reserve_bytes,
  );
  single("zoe_disk_free_bytes", "Free bytes on the database's filesystem", () => limits.status().free_disk_bytes);
  single("zoe_disk_min_free_bytes", "Free-disk floor (0: none)", () => limits.status().min_free_disk_bytes ?? 0);
  single(
    "zoe_backlog_fill_ratio",
    "Fullest limit as a fraction of where ordinary events are refused (1: refusing)",
    () => limits.status().fill_ratio,
  );
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
