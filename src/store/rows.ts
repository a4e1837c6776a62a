// The stored row and its conversions: the column list every query selects,
// the row-to-event mapping, the size an event is counted with in the backlog,
// and how a SQLite failure becomes an answer (503 when the disk or database is
// unavailable).
import { StoreUnavailableError, ZoeError } from "../domain/errors.ts";
import type { Mode, StoredEvent } from "../../supabase/functions/_shared/event-schema.ts";

export interface EventRow {
  id: string;
  mode: Mode;
  ts: string;
  seq: number;
  source: string;
  type: string;
  subtype: string;
  symbol: string | null;
  severity: StoredEvent["severity"];
  body: string;
  meta_json: string;
  idempotency_key: string;
}

export const COLUMNS = "id, mode, ts, seq, source, type, subtype, symbol, severity, body, meta_json, idempotency_key";

/**
 * The size an event is counted with in the backlog: body and meta in UTF-8
 * plus a fixed share for the other columns and the indexes. EVENT_BYTES_SQL is
 * the same sum over a stored row, so what append adds markFlushed subtracts.
 */
export const EVENT_OVERHEAD_BYTES = 200;
export const EVENT_BYTES_SQL = `length(CAST(body AS BLOB)) + length(CAST(meta_json AS BLOB)) + ${EVENT_OVERHEAD_BYTES}`;

// Admission (limits.ts) measures an event before the store encodes it: the
// JSON it made is kept with the meta object, so a large meta is encoded once.
const encodedMeta = new WeakMap<object, string>();
const EMPTY_META = "{}";

/** meta_json of an event's meta (absent: `{}`); `remember` keeps it for the insert that follows. */
export function metaJson(meta: Record<string, unknown> | undefined, remember = false): string {
  if (meta === undefined) return EMPTY_META;
  let json = encodedMeta.get(meta);
  if (json === undefined) {
    json = JSON.stringify(meta);
    if (remember) encodedMeta.set(meta, json);
  }
  return json;
}

/** The backlog bytes of an event with this body and meta JSON: EVENT_BYTES_SQL before the row exists. */
export function eventBytes(body: string, metaJsonText: string): number {
  return Buffer.byteLength(body) + Buffer.byteLength(metaJsonText) + EVENT_OVERHEAD_BYTES;
}

export function rowToEvent(row: EventRow): StoredEvent {
  return {
    id: row.id,
    mode: row.mode,
    ts: row.ts,
    seq: row.seq,
    source: row.source,
    type: row.type,
    subtype: row.subtype,
    symbol: row.symbol,
    severity: row.severity,
    body: row.body,
    meta: JSON.parse(row.meta_json) as Record<string, unknown>,
    idempotency_key: row.idempotency_key,
  };
}

const UNAVAILABLE = /^SQLITE_(FULL|READONLY|IOERR|CANTOPEN|BUSY|LOCKED|NOMEM|CORRUPT|NOTADB|PROTOCOL)/;

/** Maps a disk/database failure to a 503; anything else is rethrown as is. */
export function storeFailure(action: string, error: unknown): Error {
  if (error instanceof ZoeError) return error;
  const code = String((error as { code?: unknown })?.code ?? "");
  if (UNAVAILABLE.test(code)) {
    const reason = code.startsWith("SQLITE_FULL")
      ? "disk or database is full"
      : code.startsWith("SQLITE_READONLY")
        ? "database is read-only"
        : code;
    return new StoreUnavailableError(`${action}: ${reason}`, { cause: error });
  }
  return error instanceof Error ? error : new Error(String(error));
}
