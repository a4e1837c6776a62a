// Retention: flushed events older than the retention period are deleted in
// small chunks, so ingest is never blocked for long. Unflushed (and
// quarantined) events are never pruned.
import type { Database } from "bun:sqlite";
import { MODES, type Mode } from "../domain/schema.ts";

const CHUNK = 5000;

/**
 * Deletes flushed events stored before `cutoff` (ISO time). The newest event
 * of each mode (`lastSeq`) is kept, so MAX(seq) — the counter recovered at
 * start — never goes backwards. Returns how many rows went.
 */
export function pruneFlushed(db: Database, cutoff: string, lastSeq: (mode: Mode) => number): number {
  const remove = db.query(
    `DELETE FROM local_events WHERE rowid IN (SELECT rowid FROM local_events WHERE flushed = 1 AND flushed_at < ? AND mode = ? AND seq < ? LIMIT ${CHUNK})`,
  );
  let total = 0;
  for (const mode of MODES) {
    const keep = lastSeq(mode);
    for (;;) {
      const n = remove.run(cutoff, mode, keep).changes;
      total += n;
      if (n < CHUNK) break;
    }
  }
  return total;
}
