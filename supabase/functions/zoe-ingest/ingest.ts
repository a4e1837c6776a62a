// The zoe-ingest request handler, free of Deno globals and of any database
// driver: index.ts wires it to Deno.serve and to the Postgres writer.
//
// Wire contract (the service's flusher codes against exactly this):
//   POST /functions/v1/zoe-ingest
//   Authorization: Bearer <service_role JWT>   or   x-zoe-flush-secret: <ZOE_FLUSH_SECRET>
//   {"mode":"live","events":[StoredEvent…],"backlog":N,"state":{"ts":"…","state":{…}}|null,"after_key":"…"|null,
//    "writer":{"store_id":"<uuid>","started_at":"<ISO>"}|null}
//       after_key (optional): the idempotency key of the last event of the batch sent before this
//       one; this batch commits only once that event is stored, so a flusher with several batches
//       in flight keeps the mode's rows visible in seq order. Bounded by ZOE_INGEST_ORDER_WAIT_MS.
//       writer (optional): the local store that sent the batch and when its start began; stored on each
//       new row (zoe_events.store_id) and as the mode's writer in zoe_health, whose trigger records a
//       second writer when two alternate (migration 20261207000000).
//   200 {"results":[{idempotency_key,seq,status:"accepted"|"duplicate"|"rejected",code?,stored_event?,errors?}],accepted,duplicates,rejected,conflicts,
//        "writers":{"writer":{store_id,started_at}|null,"second_writer_at":"…"|null,"second_writer":[{store_id,started_at},…]|null}}
//       results[i] answers events[i]; error paths are JSON pointers into that event. A key already
//       stored for a different event (shared/idempotency.ts) is rejected with code "idempotency_conflict"
//       and stored_event {id, mode, seq}; only a true repeat is a duplicate.
//   "events" may be empty when "state" is set: a state-only flush (health and state are written).
//   401 no service role / bad secret · 405 not POST · 413 body too large · 400 malformed JSON or bad envelope
//   409 PREDECESSOR_NOT_COMMITTED: the after_key event was not stored in time; nothing written,
//       send again once the earlier batch is settled (without after_key).
//   503 database error: nothing of the batch was written, retry later.
//   Server-Timing: read, parse, check and db durations (ms) of a 200 answer.
//   Error bodies: {"error":{"code","message","details"}}.
import { type FieldError, checkStoredEvent, type Mode, type StoredEvent } from "../_shared/event-schema.ts";
import { conflictMessage, type StoredEventRef } from "../_shared/idempotency.ts";
import type { IngestConfig } from "./config.ts";
import {
  authorize,
  checkEnvelope,
  type Envelope,
  field,
  HttpError,
  json,
  parseJson,
  readBody,
  type StateSnapshot,
  type Writer,
} from "./request.ts";

export interface BatchWrite {
  mode: Mode;
  /** The valid events, in request order. */
  events: StoredEvent[];
  /** Number of events in the request (valid or not). */
  batchCount: number;
  backlog: number | null;
  state: StateSnapshot | null;
  /** Commit only once the event with this idempotency key is stored (see the wire contract). */
  afterKey: string | null;
  /** Idempotency key of the request's last event: the lock a successor waits on. */
  lastKey: string | null;
  /** The local store that sent the batch (null: a flusher too old to say). */
  writer: Writer | null;
}

/** What zoe_health says of the mode's writers after this batch. */
export interface WritersReport {
  writer: Writer | null;
  /** When two writers were last seen alternating on this mode. */
  second_writer_at: string | null;
  /** Both writers of that moment (store ids and start times). */
  second_writer: Record<string, unknown>[] | null;
}

export interface BatchWriteResult {
  /** Idempotency keys this write inserted (everything else valid was already there). */
  inserted: Set<string>;
  /** Events Postgres itself refused, by index into BatchWrite.events. */
  refused: Map<number, string>;
  /** Events whose idempotency_key is stored for a different event, by index into BatchWrite.events. */
  conflicts: Map<number, { stored: StoredEventRef; fields: string[] }>;
  writers: WritersReport;
}

/** Writes one batch in one transaction; throws DatabaseError and writes nothing on failure. */
export type WriteBatch = (batch: BatchWrite) => Promise<BatchWriteResult>;

export class DatabaseError extends Error {
  readonly code = "database_unavailable";
  readonly status = 503;
  constructor(
    message: string,
    readonly sqlstate: string | undefined,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = "DatabaseError";
  }
}

/** The batch named by after_key did not commit within the order wait: nothing was written. */
export class PredecessorNotCommittedError extends Error {
  readonly code = "predecessor_not_committed";
  readonly status = 409;
  constructor(mode: Mode, afterKey: string, waitedMs: number) {
    super(
      `Batch not written: the ${mode} batch ending with event ${JSON.stringify(afterKey.slice(0, 300))} has not committed after ${waitedMs} ms; send this batch again once that one is settled`,
    );
    this.name = "PredecessorNotCommittedError";
  }
}

export interface EventResult {
  idempotency_key: string | null;
  seq: number | null;
  status: "accepted" | "duplicate" | "rejected";
  /** Why a rejected event was refused, when it is not its content: "idempotency_conflict". */
  code?: "idempotency_conflict";
  /** With code idempotency_conflict: the event that holds the key. */
  stored_event?: StoredEventRef;
  errors?: FieldError[];
}

export interface IngestResponse {
  results: EventResult[];
  accepted: number;
  duplicates: number;
  /** Includes the conflicts. */
  rejected: number;
  conflicts: number;
  writers: WritersReport;
}

export interface IngestHandlerOptions {
  config: IngestConfig;
  /** Absent when SUPABASE_DB_URL is not configured. */
  write: WriteBatch | null;
  log?: (message: string) => void;
}

/** Each event checked against the schema and the batch's mode: its first answer, and the valid ones with their index. */
function checkEvents(envelope: Envelope): { results: EventResult[]; valid: StoredEvent[]; validIndex: number[] } {
  const results: EventResult[] = [];
  const valid: StoredEvent[] = [];
  const validIndex: number[] = [];
  envelope.events.forEach((event, i) => {
    const errors = checkStoredEvent(event);
    if (errors.length === 0 && (event as StoredEvent).mode !== envelope.mode) {
      errors.push({ path: "/mode", message: `Expected the batch mode ${envelope.mode}` });
    }
    results.push({
      idempotency_key: field<string>(event, "idempotency_key", "string"),
      seq: field<number>(event, "seq", "number"),
      status: errors.length ? "rejected" : "accepted",
      ...(errors.length ? { errors } : {}),
    });
    if (!errors.length) {
      valid.push(event as StoredEvent);
      validIndex.push(i);
    }
  });
  return { results, valid, validIndex };
}

/**
 * What the write says of each valid event: refused, a conflict (its key holds
 * another event), inserted (the first of its key in this batch), or else a
 * duplicate.
 */
function applyOutcome(
  valid: StoredEvent[],
  validIndex: number[],
  results: EventResult[],
  outcome: BatchWriteResult,
): void {
  const claimed = new Set<string>();
  valid.forEach((event, j) => {
    const result = results[validIndex[j]!]!;
    const refusal = outcome.refused.get(j);
    const conflict = outcome.conflicts.get(j);
    if (refusal !== undefined) {
      result.status = "rejected";
      result.errors = [{ path: "", message: refusal }];
    } else if (conflict !== undefined) {
      result.status = "rejected";
      result.code = "idempotency_conflict";
      result.stored_event = conflict.stored;
      result.errors = [
        { path: "/idempotency_key", message: conflictMessage(event.idempotency_key, conflict.stored, conflict.fields) },
      ];
    } else if (outcome.inserted.has(event.idempotency_key) && !claimed.has(event.idempotency_key)) {
      claimed.add(event.idempotency_key);
    } else {
      result.status = "duplicate";
    }
  });
}

export function createIngestHandler({
  config,
  write,
  log = () => {},
}: IngestHandlerOptions): (req: Request) => Promise<Response> {
  async function handle(req: Request): Promise<Response> {
    if (req.method !== "POST")
      throw new HttpError(405, "method_not_allowed", `${req.method} is not supported; POST a batch`, undefined, {
        allow: "POST",
      });
    await authorize(req, config);
    if (!write) throw new HttpError(500, "not_configured", "SUPABASE_DB_URL is not set for this function");
    const t0 = performance.now();
    const bytes = await readBody(req, config.maxBodyBytes);
    const t1 = performance.now();
    const envelope = checkEnvelope(parseJson(bytes), config);
    const t2 = performance.now();

    const { results, valid, validIndex } = checkEvents(envelope);
    const t3 = performance.now();
    const outcome = await write({
      mode: envelope.mode,
      events: valid,
      batchCount: envelope.events.length,
      backlog: envelope.backlog,
      state: envelope.state,
      afterKey: envelope.afterKey,
      lastKey: field<string>(envelope.events.at(-1), "idempotency_key", "string"),
      writer: envelope.writer,
    });

    applyOutcome(valid, validIndex, results, outcome);
    const count = (status: EventResult["status"]) => results.filter((r) => r.status === status).length;
    const conflicts = results.filter((r) => r.code === "idempotency_conflict").length;
    const response: IngestResponse = {
      results,
      accepted: count("accepted"),
      duplicates: count("duplicate"),
      rejected: count("rejected"),
      conflicts,
      writers: outcome.writers,
    };
    const t4 = performance.now();
    const timing = `read;dur=${(t1 - t0).toFixed(2)}, parse;dur=${(t2 - t1).toFixed(2)}, check;dur=${(t3 - t2).toFixed(2)}, db;dur=${(t4 - t3).toFixed(2)}`;
    return json(200, response, { "server-timing": timing });
  }

  return async (req) => {
    try {
      return await handle(req);
    } catch (error) {
      if (error instanceof HttpError) {
        return json(
          error.status,
          { error: { code: error.code, message: error.message, details: error.details ?? null } },
          error.headers,
        );
      }
      if (error instanceof PredecessorNotCommittedError) {
        return json(error.status, { error: { code: error.code, message: error.message, details: null } });
      }
      if (error instanceof DatabaseError) {
        log(`zoe-ingest: database error, batch not written (sqlstate ${error.sqlstate ?? "n/a"}): ${error.message}`);
        return json(
          503,
          {
            error: {
              code: error.code,
              message: `Database error, nothing written; retry later: ${error.message}`,
              details: { sqlstate: error.sqlstate ?? null },
            },
          },
          { "retry-after": "1" },
        );
      }
      log(`zoe-ingest: unexpected error: ${(error as Error)?.stack ?? String(error)}`);
      return json(500, { error: { code: "internal", message: "Unexpected error in zoe-ingest", details: null } });
    }
  };
}
