// What `zoe-local status` prints, in one answer (GET /local/status, served
// by src/http/operator.ts): the service, readiness, the database file, the
// remote, the bounded store's capacity and each mode's flush health, with the
// problems already named, worst first. Every figure comes from running
// counters or indexed lookups, so polling it during a big drain costs the
// event loop nothing measurable.
import { statSync } from "node:fs";
import { resolve } from "node:path";
import { MODES, type Mode } from "../../supabase/functions/_shared/event-schema.ts";
import type { FlushStatusSource } from "../flush/flusher.ts";
import type { Clock } from "../lib/clock.ts";
import type { Limits } from "../store/limits.ts";
import type { EventStore } from "../store/store.ts";
import type { Hub } from "../stream/hub.ts";
import type { BuildInfo } from "./build-info.ts";
import type { HealthSource } from "./health.ts";
import type { Readiness } from "./readiness.ts";

export interface StatusReportOptions {
  store: EventStore;
  hub: Hub;
  health: HealthSource;
  readiness: Readiness;
  limits: Limits;
  build: BuildInfo;
  clock: Clock;
  startedAt: number;
  /** The flusher, once there is one; null: no remote configured. */
  flusher: () => FlushStatusSource | null;
  /** Where batches go, for display (no secret). */
  remoteTarget: string | null;
}

/** An event older than this still waiting for the remote is worth a line in `problems`. */
const STALE_UNFLUSHED_MS = 15 * 60_000;

function fileSize(path: string): number | null {
  try {
    return statSync(path).size;
  } catch {
    return null;
  }
}

/** The status report as a function of now: each call reads the counters afresh. */
export function createStatusReport(options: StatusReportOptions) {
  const { store, hub, health, readiness, limits, build, clock } = options;
  const dbPath = store.path === ":memory:" ? store.path : resolve(store.path);

  const modeStatus = (mode: Mode) => ({
    ...health.health(mode),
    last_seq: store.lastSeq(mode),
    sse_clients: hub.subscriberCount(mode),
  });

  /** What is wrong, one line each, worst first; empty when all is well. */
  const problems = (
    ready: ReturnType<Readiness["check"]>,
    modes: Record<Mode, Record<string, unknown>>,
    capacity: ReturnType<Limits["status"]>,
  ) => {
    const lines = [...ready.reasons];
    for (const mode of MODES) {
      const m = modes[mode];
      const failures = Number(m.consecutive_failures ?? 0);
      if (failures > 0)
        lines.push(
          `${mode}: the last ${failures} flush attempt${failures === 1 ? "" : "s"} failed: ${m.last_error ?? "unknown error"}`,
        );
      const age = m.oldest_unflushed_age_ms;
      if (options.flusher() && typeof age === "number" && age > STALE_UNFLUSHED_MS) {
        lines.push(`${mode}: the oldest unflushed event waits for ${Math.round(age / 60_000)} min`);
      }
      const second = m.second_writer as {
        active?: boolean;
        detected_at?: string;
        writers?: { store_id: string }[];
      } | null;
      if (second?.active)
        lines.push(
          `${mode}: a second store writes this mode: ${(second.writers ?? []).map((w) => w.store_id).join(" and ")} (last seen alternating at ${second.detected_at}); stop the one that should not run`,
        );
      const quarantined = Number(m.quarantined ?? 0);
      if (quarantined > 0)
        lines.push(
          `${mode}: ${quarantined} event${quarantined === 1 ? "" : "s"} quarantined, waiting for a fix and a release`,
        );
    }
    if (capacity.fill_ratio >= 0.8 && capacity.accepting === "all")
      lines.push(`backlog or disk at ${Math.round(capacity.fill_ratio * 100)}% of where ordinary events are refused`);
    return lines;
  };

  const status = () => {
    const ready = readiness.check();
    const capacity = limits.status();
    const modes = Object.fromEntries(MODES.map((m) => [m, modeStatus(m)])) as unknown as Record<
      Mode,
      Record<string, unknown>
    >;
    const found = problems(ready, modes, capacity);
    const now = clock.now();
    return {
      status: !ready.ready ? "not_ready" : found.length > 0 ? "degraded" : "ok",
      problems: found,
      service: {
        ...build,
        pid: process.pid,
        started_at: new Date(options.startedAt).toISOString(),
        uptime_s: Math.round((now - options.startedAt) / 1000),
      },
      ready: { ready: ready.ready, reasons: ready.reasons },
      db: {
        path: dbPath,
        store_id: store.storeId,
        size_bytes: dbPath === ":memory:" ? null : fileSize(dbPath),
        wal_bytes: dbPath === ":memory:" ? null : (fileSize(`${dbPath}-wal`) ?? 0),
        free_disk_bytes: capacity.free_disk_bytes,
      },
      remote: { configured: options.flusher() !== null, target: options.remoteTarget },
      capacity,
      modes,
    };
  };

  return status;
}
