// Reads of stored events, the flush log and the state snapshots (each a
// prepared statement bounded by an index and a LIMIT).
import type { Database } from "bun:sqlite";
import type { Clock } from "../lib/clock.ts";
import {
  type Mode,
  SEVERITIES,
  type Severity,
  type StoredEvent,
} from "../../supabase/functions/_shared/event-schema.ts";
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

/** Which events a list() keeps: each given list is one condition (any of its values), and all given ones hold. */
export interface EventFilter {
  types?: readonly string[];
  subtypes?: readonly string[];
  symbols?: readonly string[];
  severities?: readonly Severity[];
}

export interface ListOptions {
  /** Only events with seq > sinceSeq, oldest first from there. */
  sinceSeq?: number;
  /** Only events with seq < beforeSeq; without sinceSeq the newest of them. */
  beforeSeq?: number;
  limit: number;
  filter?: EventFilter;
}

/**
 * The index a filter on this column seeks in (sql/local/005_event_filters.sql),
 * and the condition of a partial one, repeated in the query so SQLite may use it.
 */
const FILTER_INDEX = {
  subtype: { name: "idx_local_events_mode_subtype_seq", partial: "" },
  severity: {
    name: "idx_local_events_mode_severity_seq",
    partial: " AND severity IN ('warn', 'error', 'critical')",
  },
} as const;
/** The severities the partial severity index holds. */
const INDEXED_SEVERITIES: readonly Severity[] = ["warn", "error", "critical"];

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

  /**
   * Events with seq > sinceSeq ascending; without sinceSeq the newest `limit`,
   * ascending. `beforeSeq` bounds the seqs from above, `filter` narrows them.
   */
  list(mode: Mode, options: ListOptions): StoredEvent[] {
    const newest = this.lastSeq(mode);
    const upTo = options.beforeSeq === undefined ? newest : Math.min(newest, options.beforeSeq - 1);
    const filter = options.filter && effectiveFilter(options.filter);
    // A condition with no value to match is met by no event.
    if (filter && Object.values(filter).some((values) => values?.length === 0)) return [];
    let rows: EventRow[];
    if (filter) rows = this.filtered(mode, options.sinceSeq, upTo, options.limit, filter);
    else if (options.sinceSeq === undefined) rows = this.q.latest.all(mode, upTo, options.limit) as EventRow[];
    else rows = this.q.since.all(mode, options.sinceSeq, upTo, options.limit) as EventRow[];
    return rows.map(rowToEvent);
  }

  /**
   * A filtered list(). A subtype (else a warn-or-worse severity) filter
   * drives it: one subquery per listed value, each a seek in that column's
   * index reading at most `limit` rows in seq order, merged; the other
   * conditions are checked on those rows. Without either (type, symbol or
   * severity info alone) it reads the mode's rows in seq order until `limit`
   * match. SQLite's planner, without
   * statistics, prefers the unique (mode, seq) index and would walk every row
   * of the mode for a rare subtype: INDEXED BY holds it to the seek.
   */
  private filtered(mode: Mode, sinceSeq: number | undefined, upTo: number, limit: number, f: EventFilter): EventRow[] {
    const conditions: { column: string; values: readonly string[] }[] = [];
    const bySeverity = f.severities?.every((s) => INDEXED_SEVERITIES.includes(s)) ?? false;
    const driver: keyof typeof FILTER_INDEX | null = f.subtypes ? "subtype" : bySeverity ? "severity" : null;
    if (f.types) conditions.push({ column: "type", values: f.types });
    if (f.subtypes && driver !== "subtype") conditions.push({ column: "subtype", values: f.subtypes });
    if (f.symbols) conditions.push({ column: "symbol", values: f.symbols });
    if (f.severities && driver !== "severity") conditions.push({ column: "severity", values: f.severities });
    const where = conditions.map((c) => ` AND ${c.column} IN (${c.values.map(() => "?").join(", ")})`).join("");
    const whereArgs = conditions.flatMap((c) => c.values);
    const newestFirst = sinceSeq === undefined;
    const order = newestFirst ? "ORDER BY seq DESC" : "ORDER BY seq";
    const from = sinceSeq ?? 0;
    let rows: EventRow[];
    if (driver === null) {
      const sql = `SELECT ${COLUMNS} FROM local_events WHERE mode = ? AND seq > ? AND seq <= ?${where} ${order} LIMIT ?`;
      rows = this.db.query(sql).all(mode, from, upTo, ...whereArgs, limit) as EventRow[];
    } else {
      const values = driver === "subtype" ? f.subtypes! : f.severities!;
      const index = FILTER_INDEX[driver];
      const part = `SELECT * FROM (SELECT ${COLUMNS} FROM local_events INDEXED BY ${index.name}
        WHERE mode = ? AND ${driver} = ?${index.partial} AND seq > ? AND seq <= ?${where} ${order} LIMIT ?)`;
      const sql = `SELECT * FROM (${values.map(() => part).join(" UNION ALL ")}) ${order} LIMIT ?`;
      const args = values.flatMap((v) => [mode, v, from, upTo, ...whereArgs, limit]);
      rows = this.db.query(sql).all(...args, limit) as EventRow[];
    }
    return newestFirst ? rows.reverse() : rows;
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

/**
 * `f` without the conditions every event meets (all five severities) and
 * without repeated values, or null when nothing is left to filter on.
 */
function effectiveFilter(f: EventFilter): EventFilter | null {
  const out: EventFilter = {};
  const distinct = <T extends string>(values: readonly T[] | undefined) =>
    values === undefined ? undefined : [...new Set(values)];
  out.types = distinct(f.types);
  out.subtypes = distinct(f.subtypes);
  out.symbols = distinct(f.symbols);
  const severities = distinct(f.severities);
  out.severities = severities && SEVERITIES.every((s) => severities.includes(s)) ? undefined : severities;
  const any = Object.values(out).some((v) => v !== undefined);
  return any ? out : null;
}
