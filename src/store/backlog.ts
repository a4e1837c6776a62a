// The flush queue and its accounting: the unflushed events in seq order, the
// marks that take them out, and the running count and size of what is left
// (kept in memory, so the ingest path checks the caps without a COUNT(*)).
import type { Database } from "bun:sqlite";
import type { Clock } from "../lib/clock.ts";
import type { ZoeEvent } from "../domain/events.ts";
import { MODES, type Mode } from "../domain/schema.ts";
import { COLUMNS, EVENT_BYTES_SQL, type EventRow, rowToEvent } from "./rows.ts";

/** Unflushed events and their approximate size: what the backlog caps (src/store/limits.ts) bound. */
export interface BacklogUsage {
  events: number;
  bytes: number;
}

type Statement = ReturnType<Database["query"]>;

export class Backlog {
  private readonly db: Database;
  private readonly clock: Clock;
  private readonly usage = new Map<Mode, BacklogUsage>();
  private readonly q: Record<"unflushed" | "markFlushed" | "count" | "oldest", Statement>;

  constructor(db: Database, clock: Clock) {
    this.db = db;
    this.clock = clock;
    this.q = {
      // The seqs to skip go in as a JSON array: the flusher's acknowledged
      // events whose marks are still to be written.
      unflushed: db.query(
        `SELECT ${COLUMNS} FROM local_events WHERE mode = ? AND flushed = 0 AND seq > ? AND seq NOT IN (SELECT value FROM json_each(?)) ORDER BY seq LIMIT ?`,
      ),
      // One statement for the whole batch (ids as a JSON array): about 40% less
      // time holding the event loop than an UPDATE per id.
      markFlushed: db.query(
        `UPDATE local_events SET flushed = 1, flushed_at = ? WHERE id IN (SELECT value FROM json_each(?)) AND flushed = 0 RETURNING mode, ${EVENT_BYTES_SQL} AS bytes`,
      ),
      count: db.query("SELECT COUNT(*) AS n FROM local_events WHERE mode = ? AND flushed = 0"),
      oldest: db.query("SELECT created_at FROM local_events WHERE mode = ? AND flushed = 0 ORDER BY seq LIMIT 1"),
    };
    this.recount();
  }

  /** Recomputes the usage from the table (at open; one pass over the unflushed rows). */
  recount(): void {
    for (const mode of MODES) this.usage.set(mode, { events: 0, bytes: 0 });
    const rows = this.db
      .query(`SELECT mode, COUNT(*) AS events, COALESCE(SUM(${EVENT_BYTES_SQL}), 0) AS bytes FROM local_events WHERE flushed = 0 GROUP BY mode`)
      .all() as ({ mode: Mode } & BacklogUsage)[];
    for (const r of rows) this.usage.set(r.mode, { events: r.events, bytes: r.bytes });
  }

  /** Unflushed events (and their bytes) of `mode`, or of all modes; no query. */
  get(mode?: Mode): BacklogUsage {
    if (mode) return { ...(this.usage.get(mode) ?? { events: 0, bytes: 0 }) };
    let events = 0;
    let bytes = 0;
    for (const u of this.usage.values()) {
      events += u.events;
      bytes += u.bytes;
    }
    return { events, bytes };
  }

  /** Counts events moved in or out of the queue (new events, marks, quarantine). */
  adjust(mode: Mode, events: number, bytes: number): void {
    const u = this.usage.get(mode);
    if (!u) return;
    u.events = Math.max(0, u.events + events);
    u.bytes = Math.max(0, u.bytes + bytes);
  }

  /** Counts the events of a commit, `sizes[i]` the backlog bytes of `stored[i]`. */
  added(stored: readonly ZoeEvent[], sizes: readonly number[]): void {
    for (let i = 0; i < stored.length; i++) {
      const u = this.usage.get(stored[i]!.mode)!;
      u.events++;
      u.bytes += sizes[i]!;
    }
  }

  /** The oldest unflushed events of `mode`, in seq order, after `afterSeq` and but for `exceptSeqs`. */
  unflushed(mode: Mode, limit: number, options: { afterSeq?: number; exceptSeqs?: readonly number[] } = {}): ZoeEvent[] {
    const except = options.exceptSeqs?.length ? JSON.stringify(options.exceptSeqs) : "[]";
    return (this.q.unflushed.all(mode, options.afterSeq ?? 0, except, limit) as EventRow[]).map(rowToEvent);
  }

  /** Marks exactly these events flushed; returns how many changed. */
  markFlushed(ids: string[]): number {
    const at = new Date(this.clock.now()).toISOString();
    if (ids.length === 0) return 0;
    const done = this.q.markFlushed.all(at, JSON.stringify(ids)) as { mode: Mode; bytes: number }[];
    for (const r of done) this.adjust(r.mode, -1, -r.bytes);
    return done.length;
  }

  /** Unflushed events of `mode`, counted in the table. */
  count(mode: Mode): number {
    return (this.q.count.get(mode) as { n: number }).n;
  }

  /** When the oldest unflushed event of `mode` was stored, or null. */
  oldestAt(mode: Mode): string | null {
    return (this.q.oldest.get(mode) as { created_at: string } | null)?.created_at ?? null;
  }
}
