// The zoe-ingest request handler, free of Deno globals and of any database
// driver: index.ts wires it to Deno.serve and to the Postgres writer.
//
// Wire contract (the service's flusher codes against exactly this):
//   POST /functions/v1/zoe-ingest
//   Authorization: Bearer <service_role JWT>   or   x-zoe-flush-secret: <ZOE_FLUSH_SECRET>
//   {"mode":"live","events":[StoredEvent…],"backlog":N,"state":{"ts":"…","state":{…}}|null,"after_key":"…"|null}
//       after_key (optional): the idempotency key of the last event of the batch sent before this
//       one; this batch commits only once that event is stored, so a flusher with several batches
//       in flight keeps the mode's rows visible in seq order. Bounded by ZOE_INGEST_ORDER_WAIT_MS.
//   200 {"results":[{idempotency_key,seq,status:"accepted"|"duplicate"|"rejected",code?,stored_event?,errors?}],accepted,duplicates,rejected,conflicts}
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
import { type FieldError, checkStoredEvent, isIsoTimestamp, MODES, type Mode, type StoredEvent } from "../_shared/event-schema.ts";
import { conflictMessage, type StoredEventRef } from "../_shared/idempotency.ts";
import { decodeJwt, timingSafeEqual, verifyJwt } from "../_shared/jwt.ts";

export const DEFAULT_MAX_BODY_BYTES = 4 * 1024 * 1024;
export const DEFAULT_MAX_EVENTS = 500;

export interface IngestConfig {
  maxBodyBytes: number;
  maxEvents: number;
  /** Accepted in x-zoe-flush-secret instead of a service_role JWT. */
  flushSecret?: string;
  /** When set, JWT signatures are verified; otherwise the platform's verify_jwt is trusted. */
  jwtSecret?: string;
  /** Keys accepted verbatim as bearer tokens (SUPABASE_SERVICE_ROLE_KEY, SUPABASE_SECRET_KEYS). */
  serviceKeys: string[];
}

export interface StateSnapshot {
  ts: string;
  state: Record<string, unknown>;
}

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
}

export interface BatchWriteResult {
  /** Idempotency keys this write inserted (everything else valid was already there). */
  inserted: Set<string>;
  /** Events Postgres itself refused, by index into BatchWrite.events. */
  refused: Map<number, string>;
  /** Events whose idempotency_key is stored for a different event, by index into BatchWrite.events. */
  conflicts: Map<number, { stored: StoredEventRef; fields: string[] }>;
}

/** Writes one batch in one transaction; throws DatabaseError and writes nothing on failure. */
export type WriteBatch = (batch: BatchWrite) => Promise<BatchWriteResult>;

export class DatabaseError extends Error {
  readonly code = "DATABASE_UNAVAILABLE";
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
  readonly code = "PREDECESSOR_NOT_COMMITTED";
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
}

type Env = (name: string) => string | undefined;

function positiveInt(env: Env, name: string, fallback: number): number {
  const raw = env(name);
  if (raw === undefined || raw === "") return fallback;
  const n = Number(raw);
  if (!Number.isSafeInteger(n) || n < 1) throw new Error(`Environment variable ${name} must be a positive integer, got ${JSON.stringify(raw)}`);
  return n;
}

function secretKeys(raw: string | undefined): string[] {
  if (!raw) return [];
  try {
    const parsed: unknown = JSON.parse(raw);
    if (parsed && typeof parsed === "object") return Object.values(parsed).filter((v): v is string => typeof v === "string" && v !== "");
  } catch {
    // not JSON: a single key
  }
  return [raw];
}

/** Timeouts and pool size for writer.ts, validated like the rest of the configuration. */
export function timeoutsFromEnv(env: Env): { lockTimeoutMs: number; statementTimeoutMs: number; orderWaitMs: number; maxConnections: number } {
  return {
    lockTimeoutMs: positiveInt(env, "ZOE_INGEST_LOCK_TIMEOUT_MS", 5000),
    statementTimeoutMs: positiveInt(env, "ZOE_INGEST_STATEMENT_TIMEOUT_MS", 20_000),
    // Below the lock timeout: a batch waiting for a predecessor that never
    // comes gives up (and frees its rows' keys) before a resend of the same
    // events, blocked on those keys, would hit the lock timeout.
    orderWaitMs: positiveInt(env, "ZOE_INGEST_ORDER_WAIT_MS", 3000),
    // Each batch waiting for its predecessor holds a connection: room for a
    // flusher window of 4 in both modes without a batch queueing behind them.
    maxConnections: positiveInt(env, "ZOE_INGEST_MAX_CONNECTIONS", 10),
  };
}

export function configFromEnv(env: Env): IngestConfig {
  const nonEmpty = (name: string) => env(name) || undefined;
  return {
    maxBodyBytes: positiveInt(env, "ZOE_INGEST_MAX_BODY_BYTES", DEFAULT_MAX_BODY_BYTES),
    maxEvents: positiveInt(env, "ZOE_INGEST_MAX_EVENTS", DEFAULT_MAX_EVENTS),
    flushSecret: nonEmpty("ZOE_FLUSH_SECRET"),
    jwtSecret: nonEmpty("SUPABASE_JWT_SECRET") ?? nonEmpty("JWT_SECRET"),
    serviceKeys: [...secretKeys(nonEmpty("SUPABASE_SERVICE_ROLE_KEY")), ...secretKeys(nonEmpty("SUPABASE_SECRET_KEYS"))],
  };
}

class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly details?: unknown,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
  }
}

function json(status: number, body: unknown, headers: Record<string, string> = {}): Response {
  return new Response(JSON.stringify(body), { status, headers: { "content-type": "application/json", ...headers } });
}

async function authorize(req: Request, config: IngestConfig): Promise<void> {
  const secret = req.headers.get("x-zoe-flush-secret");
  if (secret !== null && config.flushSecret) {
    if (timingSafeEqual(secret, config.flushSecret)) return;
    throw new HttpError(401, "UNAUTHORIZED", "x-zoe-flush-secret does not match ZOE_FLUSH_SECRET");
  }
  const token = /^Bearer\s+(\S+)$/i.exec(req.headers.get("authorization") ?? "")?.[1];
  if (!token) throw new HttpError(401, "UNAUTHORIZED", "Missing Authorization: Bearer <service_role key> (or x-zoe-flush-secret)");
  if (config.serviceKeys.some((key) => timingSafeEqual(token, key))) return;
  // Without a JWT secret the signature cannot be checked here. Reading the role
  // unverified is only safe behind the platform's verify_jwt, and only needed
  // when the service key itself is unknown: the platform injects it, so on
  // Supabase a forged {role:"service_role"} never passes, even with
  // verify_jwt = false.
  if (!config.jwtSecret && config.serviceKeys.length > 0) {
    throw new HttpError(401, "UNAUTHORIZED", "Bearer token is not this project's service_role key");
  }
  let role: unknown;
  try {
    role = (config.jwtSecret ? await verifyJwt(token, config.jwtSecret) : decodeJwt(token)).role;
  } catch (error) {
    throw new HttpError(401, "UNAUTHORIZED", `Invalid JWT: ${(error as Error).message}`);
  }
  if (role !== "service_role") {
    throw new HttpError(401, "UNAUTHORIZED", `Role ${JSON.stringify(role ?? null)} may not flush events; the service_role key is required`);
  }
}

async function readBody(req: Request, limit: number): Promise<Uint8Array> {
  const tooLarge = () => new HttpError(413, "PAYLOAD_TOO_LARGE", `Request body exceeds ${limit} bytes`, { limit });
  const declared = Number(req.headers.get("content-length") ?? NaN);
  if (declared > limit) throw tooLarge();
  if (!req.body) return new Uint8Array();
  const chunks: Uint8Array[] = [];
  let size = 0;
  const reader = req.body.getReader();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > limit) {
      await reader.cancel().catch(() => {});
      throw tooLarge();
    }
    chunks.push(value);
  }
  const out = new Uint8Array(size);
  let offset = 0;
  for (const c of chunks) {
    out.set(c, offset);
    offset += c.byteLength;
  }
  return out;
}

function parseJson(bytes: Uint8Array): unknown {
  try {
    return JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(bytes));
  } catch (cause) {
    throw new HttpError(400, "MALFORMED_JSON", `Request body is not valid UTF-8 JSON: ${(cause as Error).message}`);
  }
}

const isObject = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === "object" && !Array.isArray(v);

// Postgres jsonb refuses NUL and lone surrogates; a snapshot carrying one
// would fail the whole transaction on every retry, so it is refused here.
function unstorableJson(value: unknown): string | null {
  const text = JSON.stringify(value);
  if (text.includes("\\u0000")) return "Expected no NUL characters";
  if (/\\ud[89a-f][0-9a-f]{2}/i.test(text)) return "Expected well-formed Unicode (lone surrogate found)";
  return null;
}

interface Envelope {
  mode: Mode;
  events: unknown[];
  backlog: number | null;
  state: StateSnapshot | null;
  afterKey: string | null;
}

const ENVELOPE_KEYS = new Set(["mode", "events", "backlog", "state", "after_key"]);

function checkEnvelope(body: unknown, config: IngestConfig): Envelope {
  const errors: FieldError[] = [];
  if (!isObject(body)) throw new HttpError(400, "INVALID_BATCH", "Request body must be a JSON object", { errors: [{ path: "", message: "Expected object" }] });
  for (const key of Object.keys(body)) if (!ENVELOPE_KEYS.has(key)) errors.push({ path: `/${key}`, message: "Unexpected property" });
  if (!MODES.includes(body.mode as Mode)) errors.push({ path: "/mode", message: `Expected one of: ${MODES.join(", ")}` });
  const events = body.events;
  if (!Array.isArray(events)) errors.push({ path: "/events", message: "Expected array" });
  // No events is a state-only flush: the snapshot must reach the remote when no event is pending.
  else if (events.length < 1 && (body.state ?? null) === null) errors.push({ path: "/events", message: "Expected at least 1 event, or a state snapshot" });
  else if (events.length > config.maxEvents) errors.push({ path: "/events", message: `Expected at most ${config.maxEvents} events, got ${events.length}` });
  const backlog = body.backlog ?? null;
  if (backlog !== null && !(Number.isSafeInteger(backlog) && (backlog as number) >= 0)) {
    errors.push({ path: "/backlog", message: "Expected a non-negative integer" });
  }
  const afterKey = body.after_key ?? null;
  if (afterKey !== null && !(typeof afterKey === "string" && afterKey.length >= 1 && afterKey.length <= 256)) {
    errors.push({ path: "/after_key", message: "Expected an idempotency key (1 to 256 characters) or null" });
  }
  const state = body.state ?? null;
  if (state !== null) {
    if (!isObject(state)) errors.push({ path: "/state", message: "Expected object or null" });
    else {
      for (const key of Object.keys(state)) if (key !== "ts" && key !== "state") errors.push({ path: `/state/${key}`, message: "Unexpected property" });
      if (typeof state.ts !== "string" || !isIsoTimestamp(state.ts)) errors.push({ path: "/state/ts", message: "Expected ISO 8601 date-time with offset" });
      if (!isObject(state.state)) errors.push({ path: "/state/state", message: "Expected object" });
      else {
        const problem = unstorableJson(state.state);
        if (problem) errors.push({ path: "/state/state", message: problem });
      }
    }
  }
  if (errors.length) {
    const tooMany = Array.isArray(events) && events.length > config.maxEvents;
    throw new HttpError(400, tooMany ? "BATCH_TOO_LARGE" : "INVALID_BATCH", `Invalid batch: ${errors.map((e) => `${e.path || "/"} ${e.message}`).join("; ")}`, {
      errors,
      maxEvents: config.maxEvents,
    });
  }
  return { mode: body.mode as Mode, events: events as unknown[], backlog: backlog as number | null, state: state as StateSnapshot | null, afterKey: afterKey as string | null };
}

function field<T>(event: unknown, key: string, type: "string" | "number"): T | null {
  return isObject(event) && typeof event[key] === type ? (event[key] as T) : null;
}

export interface IngestHandlerOptions {
  config: IngestConfig;
  /** Absent when SUPABASE_DB_URL is not configured. */
  write: WriteBatch | null;
  log?: (message: string) => void;
}

export function createIngestHandler({ config, write, log = () => {} }: IngestHandlerOptions): (req: Request) => Promise<Response> {
  async function handle(req: Request): Promise<Response> {
    if (req.method !== "POST") throw new HttpError(405, "METHOD_NOT_ALLOWED", `${req.method} is not supported; POST a batch`, undefined, { allow: "POST" });
    await authorize(req, config);
    if (!write) throw new HttpError(500, "NOT_CONFIGURED", "SUPABASE_DB_URL is not set for this function");
    const t0 = performance.now();
    const bytes = await readBody(req, config.maxBodyBytes);
    const t1 = performance.now();
    const envelope = checkEnvelope(parseJson(bytes), config);
    const t2 = performance.now();

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

    const t3 = performance.now();
    const outcome = await write({
      mode: envelope.mode,
      events: valid,
      batchCount: envelope.events.length,
      backlog: envelope.backlog,
      state: envelope.state,
      afterKey: envelope.afterKey,
      lastKey: field<string>(envelope.events.at(-1), "idempotency_key", "string"),
    });

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
        result.errors = [{ path: "/idempotency_key", message: conflictMessage(event.idempotency_key, conflict.stored, conflict.fields) }];
      } else if (outcome.inserted.has(event.idempotency_key) && !claimed.has(event.idempotency_key)) {
        claimed.add(event.idempotency_key);
      } else {
        result.status = "duplicate";
      }
    });
    const count = (status: EventResult["status"]) => results.filter((r) => r.status === status).length;
    const conflicts = results.filter((r) => r.code === "idempotency_conflict").length;
    const response: IngestResponse = { results, accepted: count("accepted"), duplicates: count("duplicate"), rejected: count("rejected"), conflicts };
    const t4 = performance.now();
    const timing = `read;dur=${(t1 - t0).toFixed(2)}, parse;dur=${(t2 - t1).toFixed(2)}, check;dur=${(t3 - t2).toFixed(2)}, db;dur=${(t4 - t3).toFixed(2)}`;
    return json(200, response, { "server-timing": timing });
  }

  return async (req) => {
    try {
      return await handle(req);
    } catch (error) {
      if (error instanceof HttpError) {
        return json(error.status, { error: { code: error.code, message: error.message, details: error.details ?? null } }, error.headers);
      }
      if (error instanceof PredecessorNotCommittedError) {
        return json(error.status, { error: { code: error.code, message: error.message, details: null } });
      }
      if (error instanceof DatabaseError) {
        log(`zoe-ingest: database error, batch not written (sqlstate ${error.sqlstate ?? "n/a"}): ${error.message}`);
        return json(503, { error: { code: error.code, message: `Database error, nothing written; retry later: ${error.message}`, details: { sqlstate: error.sqlstate ?? null } } }, { "retry-after": "1" });
      }
      log(`zoe-ingest: unexpected error: ${(error as Error)?.stack ?? String(error)}`);
      return json(500, { error: { code: "INTERNAL", message: "Unexpected error in zoe-ingest", details: null } });
    }
  };
}
