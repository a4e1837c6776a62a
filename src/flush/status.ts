// What one mode's flusher reports into /health: phase, cadence, the last
// attempt and success, the next attempt, the last error and the quarantine.
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

export function workerStatus(w: WorkerView, o: { now: number; market: MarketClock; remote: string; quarantined: number }): Record<string, unknown> {
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
  };
}
