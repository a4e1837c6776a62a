// A second, read-only connection to the flush queue, for a worker thread that
// reads and encodes batches off the event loop (src/flush/reader-worker.ts).
// WAL lets it read while the service's connection writes; each read is its
// own short transaction, so it never holds a checkpoint back for long.
import { Database } from "bun:sqlite";
import type { Mode, StoredEvent } from "../../supabase/functions/_shared/event-schema.ts";
import { COLUMNS, type EventRow, rowToEvent } from "./rows.ts";

export interface QueueReader {
  /**
   * The oldest unflushed events of `mode` after seq `afterSeq` and up to
   * `untilSeq`, in seq order. `untilSeq` is the store's durable seq
   * (EventStore.lastSeq): this connection also sees a group committed but not
   * yet synced (src/store/wal-sync.ts), which must not reach the remote.
   */
  unflushed(mode: Mode, limit: number, afterSeq: number, untilSeq: number): StoredEvent[];
  close(): void;
}

export function openQueueReader(path: string): QueueReader {
  const db = new Database(path, { readonly: true, strict: true });
  db.run("PRAGMA busy_timeout = 5000");
  db.run("PRAGMA cache_size = -4000");
  const unflushed = db.query(
    `SELECT ${COLUMNS} FROM local_events WHERE mode = ? AND flushed = 0 AND seq > ? AND seq <= ? ORDER BY seq LIMIT ?`,
  );
  return {
    unflushed: (mode, limit, afterSeq, untilSeq) =>
      (unflushed.all(mode, afterSeq, untilSeq, limit) as EventRow[]).map(rowToEvent),
    close: () => db.close(),
  };
}
