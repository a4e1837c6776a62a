// Reads of stored events, the flush log and the state snapshots (each a
// prepared statement bounded by an index and a LIMIT).
import type { Database } from "bun:sqlite";
import type { Clock } from "../lib/clock.ts";
import type { ZoeEvent } from "../domain/events.ts";
import type { Mode } from "../../supabase/functions/_shared/event-schema.ts";
import { COLUMNS, type EventRow, rowToEvent, storeFailure } from "./rows.ts";
import { withoutSync } from "./wal-sync.ts";

export interface FlushLogEntry {
  mode: Mode;
  count: number;
  last_seq: number;
  status: "ok" | "partial" | "error";
  error?: string | null;
}

export interface StateSnapshot {
  ts: string;
  state: Record<string, unknown>;
}

type Statement = ReturnType<Database["query"]>;

/**
 * Events of a mode after a seq and up to a seq, in seq order, each as
 * [seq, the JSON.stringify(rowToEvent(row)) text] built by SQLite: one string
 * per row instead of twelve, and no JSON.parse of meta and stringify of the
 * whole event in JS (the SSE replay's cost). meta_json is JSON.stringify's own
 * output and json() keeps its text. Parameters: mode, after, through, limit.
 */
export const SINCE_JSON_SQL = `SELECT seq, json_object('id', id, 'mode', mode, 'ts', ts, 'seq', seq, 'source', source, 'type', type, 'subtype', subtype,
     'symbol', symbol, 'severity', severity, 'body', body, 'meta', json(meta_json), 'idempotency_key', idempotency_key)
   FROM local_events WHERE mode = ? AND seq > ? AND seq <= ? ORDER BY seq LIMIT ?`;

/** As SINCE_JSON_SQL, the whole rows (for rowToEvent). */
export const SINCE_SQL = `SELECT ${COLUMNS} FROM local_events WHERE mode = ? AND seq > ? AND seq <= ? ORDER BY seq LIMIT ?`;

export class Queries {
  private readonly db: Database;
  private readonly clock: Clock;
  private readonly stateKeep: number;
  private readonly q: Record<
    "since" | "sinceJson" | "latest" | "logFlush" | "lastFlush" | "putState" | "trimState" | "latestState",
    Statement
  >;

  /** Readers see events up to the durable seq of each mode (writer.ts), never one still being synced. */
  private readonly lastSeq: (mode: Mode) => number;

  constructor(db: Database, options: { clock: Clock; stateKeep: number; lastSeq: (mode: Mode) => number }) {
    this.db = db;
    this.lastSeq = options.lastSeq;
    this.clock = options.clock;
    this.stateKeep = options.stateKeep;
    this.q = {
      since: db.query(SINCE_SQL),
      sinceJson: db.query(SINCE_JSON_SQL),
      latest: db.query(
        `SELECT * FROM (SELECT ${COLUMNS} FROM local_events WHERE mode = ? AND seq <= ? ORDER BY seq DESC LIMIT ?) ORDER BY seq`,
      ),
      logFlush: db.query(
        "INSERT INTO local_flush_log (ts, mode, count, last_seq, status, error) VALUES (?, ?, ?, ?, ?, ?)",
      ),
      lastFlush: db.query(
        "SELECT ts, count, last_seq, status, error FROM local_flush_log WHERE mode = ? ORDER BY id DESC LIMIT 1",
      ),
      putState: db.query("INSERT INTO local_state_snapshots (mode, ts, state_json) VALUES (?, ?, ?)"),
      trimState: db.query(
        "DELETE FROM local_state_snapshots WHERE mode = ? AND id <= (SELECT id FROM local_state_snapshots WHERE mode = ? ORDER BY id DESC LIMIT 1 OFFSET ?)",
      ),
      latestState: db.query("SELECT ts, state_json FROM local_state_snapshots WHERE mode = ? ORDER BY id DESC LIMIT 1"),
    };
  }

  /** Events with seq > sinceSeq ascending; without sinceSeq the newest `limit`, ascending. */
  list(mode: Mode, options: { sinceSeq?: number; limit: number }): ZoeEvent[] {
    const rows =
      options.sinceSeq === undefined
        ? this.q.latest.all(mode, this.lastSeq(mode), options.limit)
        : this.q.since.all(mode, options.sinceSeq, this.lastSeq(mode), options.limit);
    return (rows as EventRow[]).map(rowToEvent);
  }

  /** As list() with sinceSeq, each event as [seq, its JSON text]; the text equals JSON.stringify of the event. */
  listJson(mode: Mode, sinceSeq: number, limit: number): [seq: number, json: string][] {
    try {
      return this.q.sinceJson.values(mode, sinceSeq, this.lastSeq(mode), limit) as [number, string][];
    } catch {
      // SQLite's JSON parser refused a meta (deeper than its limit, say): the slow way.
      return this.list(mode, { sinceSeq, limit }).map((e) => [e.seq, JSON.stringify(e)]);
    }
  }

  /** An audit row: written without waiting for fsync (sync.ts). */
  logFlush(entry: FlushLogEntry): void {
    const at = new Date(this.clock.now()).toISOString();
    withoutSync(this.db, () =>
      this.q.logFlush.run(at, entry.mode, entry.count, entry.last_seq, entry.status, entry.error ?? null),
    );
  }

  lastFlush(mode: Mode): (FlushLogEntry & { ts: string }) | null {
    const row = this.q.lastFlush.get(mode) as (Omit<FlushLogEntry, "mode"> & { ts: string }) | null;
    return row ? { mode, ...row } : null;
  }

  putState(mode: Mode, state: Record<string, unknown>): StateSnapshot {
    const ts = new Date(this.clock.now()).toISOString();
    try {
      this.db
        .transaction(() => {
          this.q.putState.run(mode, ts, JSON.stringify(state));
          this.q.trimState.run(mode, mode, this.stateKeep);
        })
        .immediate();
    } catch (error) {
      throw storeFailure(`Cannot store state snapshot for ${mode}`, error);
    }
    return { ts, state };
  }

  latestState(mode: Mode): StateSnapshot | null {
    const row = this.q.latestState.get(mode) as { ts: string; state_json: string } | null;
    return row ? { ts: row.ts, state: JSON.parse(row.state_json) as Record<string, unknown> } : null;
  }
}
