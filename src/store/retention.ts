// Retention: flushed events older than the retention period are deleted in
// small chunks, so ingest is never blocked for long. Unflushed (and
// quarantined) events are never pruned.
import type { Database } from "bun:sqlite";
import type { Scheduler } from "../lib/scheduler.ts";
import { MODES, type Mode } from "../../supabase/functions/_shared/event-schema.ts";

/** Rows per DELETE: a few ms of the event loop each. */
export const PRUNE_CHUNK = 1000;

export type PruneStep = (limit?: number) => number;

/**
 * A step of retention: deletes up to `limit` flushed events stored before
 * `cutoff()` (ISO time) and returns how many went. The newest event of each
 * mode (`lastSeq`) is kept, so MAX(seq) — the counter recovered at start —
 * never goes backwards. The walk is pinned to the flushed_at index: left to
 * itself the planner may take (mode, seq) for `seq < ?`, which reads every
 * row of the mode to find none to delete — the whole table at each start.
 */
export function pruneStep(db: Database, cutoff: () => string, lastSeq: (mode: Mode) => number): PruneStep {
  const remove = db.query(
    `DELETE FROM local_events WHERE rowid IN (
       SELECT rowid FROM local_events INDEXED BY idx_local_events_flushed_at
       WHERE flushed = 1 AND flushed_at < ? AND seq < json_extract(?, '$.' || mode) LIMIT ?)`,
  );
  return (limit = PRUNE_CHUNK) => {
    const keep = JSON.stringify(Object.fromEntries(MODES.map((m) => [m, lastSeq(m)])));
    return remove.run(cutoff(), keep, limit).changes;
  };
}

/** Runs `step` until nothing is left to prune; returns how many rows went. */
export function pruneAll(step: PruneStep): number {
  let total = 0;
  for (;;) {
    const n = step();
    total += n;
    if (n < PRUNE_CHUNK) return total;
  }
}

export interface RetentionLoopOptions {
  step: PruneStep;
  scheduler: Scheduler;
  signal: AbortSignal;
  /** Between passes (the service: an hour). */
  intervalMs: number;
  /** Before the first pass: after start-up, not in its way (default 0). */
  delayMs?: number;
  /** A pass deleted `count` rows. */
  onPruned?(count: number): void;
  onError?(error: unknown): void;
}

/**
 * Prunes in the background until `signal` aborts: a pass deletes chunk after
 * chunk with a turn of the event loop between them, so a large backlog of
 * expired rows (after a long downtime, or a shorter ZOE_RETENTION_DAYS) never
 * holds ingest or start-up for more than one chunk.
 */
export async function runRetention(options: RetentionLoopOptions): Promise<void> {
  const { step, scheduler, signal } = options;
  let wait = options.delayMs ?? 0;
  for (;;) {
    try {
      await scheduler.sleep(wait, signal);
    } catch {
      return; // aborted
    }
    wait = options.intervalMs;
    let total = 0;
    try {
      while (!signal.aborted) {
        const n = step();
        total += n;
        if (n < PRUNE_CHUNK) break;
        await new Promise<void>((r) => setImmediate(r));
      }
      if (total > 0) options.onPruned?.(total);
    } catch (error) {
      options.onError?.(error);
    }
  }
}
