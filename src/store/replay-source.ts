// A second, read-only connection for SSE replays, for a worker thread that
// reads and frames replay pages off the event loop (src/stream/replay-worker.ts).
// WAL lets it read while the service's connection writes; each page is its
// own short transaction, so it never holds a checkpoint back for long.
import { Database } from "bun:sqlite";
import type { Mode } from "../../supabase/functions/_shared/event-schema.ts";
import { SINCE_JSON_SQL, SINCE_SQL } from "./queries.ts";
import { type EventRow, rowToEvent } from "./rows.ts";

export interface ReplaySource {
  /**
   * As EventStore.listJson: events of `mode` after `afterSeq` and up to
   * `throughSeq`, each as [seq, its JSON text]. `throughSeq` is the store's
   * durable seq (EventStore.lastSeq): this connection also sees a group
   * committed but not yet synced, which no reader may see.
   */
  pageJson(mode: Mode, afterSeq: number, throughSeq: number, limit: number): [seq: number, json: string][];
  close(): void;
}

export function openReplaySource(path: string): ReplaySource {
  const db = new Database(path, { readonly: true, strict: true });
  db.run("PRAGMA busy_timeout = 5000");
  db.run("PRAGMA cache_size = -4000");
  const json = db.query(SINCE_JSON_SQL);
  const rows = db.query(SINCE_SQL);
  return {
    pageJson(mode, afterSeq, throughSeq, limit) {
      try {
        return json.values(mode, afterSeq, throughSeq, limit) as [number, string][];
      } catch {
        // SQLite's JSON parser refused a meta (deeper than its limit, say): the slow way.
        return (rows.all(mode, afterSeq, throughSeq, limit) as EventRow[]).map((r) => {
          const e = rowToEvent(r);
          return [e.seq, JSON.stringify(e)];
        });
      }
    },
    close: () => db.close(),
  };
}
