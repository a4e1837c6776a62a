// Poison events, set aside so the flush queue keeps moving. An event lands
// here when the remote rejects it for good (or it fails the shared schema
// locally); it stays in local_events with flushed = 2 until an operator
// releases it after a fix (POST /local/quarantine/retry).
import type { Clock } from "../lib/clock.ts";
import { ValidationError } from "../domain/errors.ts";
import {
  type FieldError,
  isUuid,
  MODES,
  type Mode,
  type StoredEvent,
} from "../../supabase/functions/_shared/event-schema.ts";
import { type EventStore, rowToEvent, storeFailure } from "../store/store.ts";

export interface QuarantineInput {
  /** What setting it aside needs of the event. */
  event: Pick<StoredEvent, "id" | "mode" | "seq">;
  reason: string;
  errors?: FieldError[];
  remoteStatus?: number | null;
}

export interface QuarantineEntry {
  event: StoredEvent;
  reason: string;
  errors: FieldError[];
  remote_status: number | null;
  attempts: number;
  quarantined_at: string;
}

const EVENT_COLUMNS =
  "e.id, e.mode, e.ts, e.seq, e.source, e.type, e.subtype, e.symbol, e.severity, e.body, e.meta_json, e.idempotency_key";

export class Quarantine {
  private readonly store: EventStore;
  private readonly clock: Clock;

  constructor(store: EventStore, clock: Clock) {
    this.store = store;
    this.clock = clock;
  }

  /** Sets these events aside; returns how many were still queued (flushed = 0) and moved. */
  add(items: QuarantineInput[]): number {
    if (items.length === 0) return 0;
    const db = this.store.db;
    const now = new Date(this.clock.now()).toISOString();
    const take = db.query("UPDATE local_events SET flushed = 2 WHERE id = ? AND flushed = 0");
    const upsert = db.query(
      `INSERT INTO local_quarantine (event_id, mode, seq, reason, errors_json, remote_status, attempts, quarantined_at)
       VALUES (?, ?, ?, ?, ?, ?, 1, ?)
       ON CONFLICT (event_id) DO UPDATE SET reason = excluded.reason, errors_json = excluded.errors_json,
         remote_status = excluded.remote_status, attempts = attempts + 1, quarantined_at = excluded.quarantined_at, released_at = NULL`,
    );
    let moved = 0;
    try {
      db.transaction(() => {
        for (const { event, reason, errors, remoteStatus } of items) {
          if (take.run(event.id).changes === 0) continue;
          moved++;
          upsert.run(
            event.id,
            event.mode,
            event.seq,
            reason.slice(0, 2000),
            JSON.stringify(errors ?? []),
            remoteStatus ?? null,
            now,
          );
        }
      }).immediate();
    } catch (error) {
      throw storeFailure("Cannot quarantine events", error);
    }
    // The triggers counted the change in local_backlog; the store's in-memory copy follows.
    if (moved > 0) this.store.reloadBacklog();
    return moved;
  }

  /** Quarantined events of `mode`, oldest seq first. */
  list(mode: Mode, options: { limit: number; afterSeq?: number }): QuarantineEntry[] {
    return this.select(
      "q.mode = ? AND q.released_at IS NULL AND q.seq > ? ORDER BY q.seq LIMIT ?",
      mode,
      options.afterSeq ?? 0,
      options.limit,
    );
  }

  /** One quarantined event by id, or null (never quarantined, or released). */
  get(id: string): QuarantineEntry | null {
    return this.select("q.event_id = ? AND q.released_at IS NULL", id)[0] ?? null;
  }

  private select(where: string, ...params: (string | number)[]): QuarantineEntry[] {
    const rows = this.store.db
      .query(
        `SELECT ${EVENT_COLUMNS}, q.reason, q.errors_json, q.remote_status, q.attempts, q.quarantined_at
         FROM local_quarantine q JOIN local_events e ON e.id = q.event_id WHERE ${where}`,
      )
      .all(...params) as (Parameters<typeof rowToEvent>[0] & {
      reason: string;
      errors_json: string;
      remote_status: number | null;
      attempts: number;
      quarantined_at: string;
    })[];
    return rows.map((r) => ({
      event: rowToEvent(r),
      reason: r.reason,
      errors: JSON.parse(r.errors_json) as FieldError[],
      remote_status: r.remote_status,
      attempts: r.attempts,
      quarantined_at: r.quarantined_at,
    }));
  }

  count(mode: Mode): number {
    return (
      this.store.db
        .query("SELECT COUNT(*) AS n FROM local_quarantine WHERE mode = ? AND released_at IS NULL")
        .get(mode) as { n: number }
    ).n;
  }

  /** Puts quarantined events (all of `mode`, or just `ids`) back in the flush queue; returns how many. */
  release(mode: Mode, ids?: string[]): number {
    const db = this.store.db;
    const now = new Date(this.clock.now()).toISOString();
    const targets =
      ids ??
      (
        db.query("SELECT event_id FROM local_quarantine WHERE mode = ? AND released_at IS NULL").all(mode) as {
          event_id: string;
        }[]
      ).map((r) => r.event_id);
    const free = db.query(
      "UPDATE local_quarantine SET released_at = ? WHERE event_id = ? AND mode = ? AND released_at IS NULL",
    );
    const requeue = db.query("UPDATE local_events SET flushed = 0 WHERE id = ? AND flushed = 2");
    let released = 0;
    try {
      db.transaction(() => {
        for (const id of targets) {
          if (free.run(now, id, mode).changes === 0) continue;
          released += requeue.run(id).changes;
        }
      }).immediate();
    } catch (error) {
      throw storeFailure("Cannot release quarantined events", error);
    }
    if (released > 0) this.store.reloadBacklog();
    return released;
  }
}

/** What the HTTP routes need: list, count, and retry (release + flush). */
export interface QuarantineSource {
  list(mode: Mode, options: { limit: number; afterSeq?: number }): QuarantineEntry[];
  /** One quarantined event by id, or null. */
  get?(id: string): QuarantineEntry | null;
  count(mode: Mode): number;
  /** Puts quarantined events back in the flush queue and asks for a flush; returns how many. */
  retry(mode: Mode, ids?: string[]): number;
}

/** Body of POST /local/quarantine/retry: `{mode, ids?}`; without ids, every quarantined event of the mode. */
export function checkRetryInput(body: unknown): { mode: Mode; ids?: string[] } {
  const fail = (path: string, message: string) =>
    new ValidationError(`Cannot retry quarantined events: ${path} ${message}`, [{ path, message }]);
  if (body === null || typeof body !== "object" || Array.isArray(body))
    throw fail("", "expected a JSON object {mode, ids?}");
  const { mode, ids, ...rest } = body as Record<string, unknown>;
  const unknown = Object.keys(rest)[0];
  if (unknown !== undefined) throw fail(`/${unknown}`, "unexpected property");
  if (typeof mode !== "string" || !(MODES as readonly string[]).includes(mode))
    throw fail("/mode", `expected one of: ${MODES.join(", ")}`);
  if (ids === undefined) return { mode: mode as Mode };
  if (!Array.isArray(ids) || ids.length < 1 || ids.length > 1000)
    throw fail("/ids", "expected an array of 1 to 1000 event ids");
  ids.forEach((id, i) => {
    if (typeof id !== "string" || !isUuid(id)) throw fail(`/ids/${i}`, "expected an event id (lower-case UUID)");
  });
  return { mode: mode as Mode, ids: ids as string[] };
}
