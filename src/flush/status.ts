// What one mode's flusher reports into /health: phase, cadence, the last
// attempt and success, the next attempt, the last error, the quarantine, how
// far the queue is flushed without gaps, and the batches in flight.
import type { Mode } from "../../supabase/functions/_shared/event-schema.ts";
import type { EventStore } from "../store/store.ts";
import type { MarketClock } from "./market-clock.ts";

export type WorkerPhase = "idle" | "flushing" | "backoff" | "stopped";

export interface WorkerView {
  phase: WorkerPhase;
  consecutiveFailures: number;
  lastAttemptAt: number | null;
  lastSuccessAt: number | null;
  nextAttemptAt: number | null;
  lastError: string | null;
}

export interface StatusExtras {
  now: number;
  market: MarketClock;
  remote: string;
  quarantined: number;
  /** Batches sent and not yet settled. */
  inFlight: number;
  /** Batches allowed in flight now. */
  window: number;
  flushedThroughSeq: number;
}

/**
 * The highest seq up to which every event of `mode` is flushed (or
 * quarantined): with several batches in flight a later one may be answered
 * first, so the newest acknowledged seq is not what Postgres holds without gaps.
 */
export function flushedThrough(store: EventStore, mode: Mode): number {
  const oldest = store.unflushed(mode, 1)[0];
  return oldest ? oldest.seq - 1 : store.lastSeq(mode);
}

export function workerStatus(w: WorkerView, o: StatusExtras): Record<string, unknown> {
  const cadence = o.market.cadence(o.now);
  const iso = (t: number | null) => (t === null ? null : new Date(t).toISOString());
  return {
    remote: o.remote,
    flusher: w.phase,
    cadence: cadence.active ? "market_hours" : "off_hours",
    interval_ms: cadence.intervalMs,
    consecutive_failures: w.consecutiveFailures,
    last_attempt_at: iso(w.lastAttemptAt),
    last_success_at: iso(w.lastSuccessAt),
    next_attempt_at: w.phase === "flushing" ? null : iso(w.nextAttemptAt),
    last_error: w.lastError,
    quarantined: o.quarantined,
    flushed_through_seq: o.flushedThroughSeq,
    in_flight_batches: o.inFlight,
    window: o.window,
  };
}
