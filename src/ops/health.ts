// Per-mode health: what the local store knows, plus whatever the flusher
// reports once a remote is configured.
import type { FlushStatusSource } from "../flush/flusher.ts";
import type { Clock } from "../lib/clock.ts";
import type { Mode } from "../../supabase/functions/_shared/event-schema.ts";
import type { EventStore } from "../store/store.ts";
import type { WritersStatus } from "../flush/writers.ts";

export interface HealthSource {
  /** Per-mode health for GET /local/state and GET /health. */
  health(mode: Mode): Record<string, unknown>;
}

export type { FlushStatusSource };

export function createHealth(options: {
  store: EventStore;
  clock: Clock;
  startedAt: number;
  flusher?: FlushStatusSource | null;
  /** The bounded store: how close the backlog and disk are to their limits. */
  limits?: { status(): Record<string, unknown> } | null;
  /** The mode's writers as the remote reports them (src/flush/writers.ts). */
  writers?: { status(mode: Mode): WritersStatus } | null;
}): HealthSource {
  const { store, clock, startedAt } = options;
  return {
    health(mode) {
      const last = store.lastFlush(mode);
      const oldest = store.oldestUnflushedAt(mode);
      return {
        // The store's running count, exact and free: a COUNT(*) here would cost
        // milliseconds of the event loop on every poll of a big backlog.
        backlog: store.backlogUsage(mode).events,
        oldest_unflushed_age_ms: oldest ? Math.max(0, clock.now() - Date.parse(oldest)) : null,
        last_flush_ts: last?.ts ?? null,
        last_flush_status: last?.status ?? null,
        last_flush_error: last?.error ?? null,
        remote_configured: Boolean(options.flusher),
        remote: options.flusher ? undefined : "no remote configured",
        uptime_s: Math.round((clock.now() - startedAt) / 1000),
        ...options.flusher?.status(mode),
        ...(options.limits ? { capacity: options.limits.status() } : {}),
        // Which store this is and where its seqs stand: a reader tells a new
        // range (a jump to seq_range.start_seq or a seq_ranges[] start) from a loss.
        store: {
          id: store.storeId,
          created_at: store.createdAt,
          started_at: store.startedAt,
          seq_range: store.currentRange(mode),
          seq_ranges: store.seqRanges(mode, 5),
        },
        ...(options.writers ? writersHealth(options.writers.status(mode)) : {}),
      };
    },
  };
}

/** The remote's view of the mode's writers; second_writer names both store ids while it is active. */
function writersHealth(w: WritersStatus): Record<string, unknown> {
  return { remote_writer: w.remote_writer, second_writer: w.second_writer };
}
