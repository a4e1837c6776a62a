// What zoe-ingest checks of a request before any event is: who sends it
// (service_role key or JWT, or the flush secret), its size (read in bounded
// chunks), that it is UTF-8 JSON, and its envelope (mode, events, backlog,
// state, after_key). Each refusal is an HttpError with its status and code.
import type { ErrorCode } from "../_shared/error-codes.ts";
import { type FieldError, isIsoTimestamp, MODES, type Mode } from "../_shared/event-schema.ts";
import { decodeJwt, timingSafeEqual, verifyJwt } from "../_shared/jwt.ts";
import type { IngestConfig } from "./config.ts";

export interface StateSnapshot {
  ts: string;
  state: Record<string, unknown>;
}

export class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly code: ErrorCode,
    message: string,
    readonly details?: unknown,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
  }
}

export function json(status: number, body: unknown, headers: Record<string, string> = {}): Response {
  return new Response(JSON.stringify(body), { status, headers: { "content-type": "application/json", ...headers } });
}

export async function authorize(req: Request, config: IngestConfig): Promise<void> {
  const secret = req.headers.get("x-zoe-flush-secret");
  if (secret !== null && config.flushSecret) {
    if (timingSafeEqual(secret, config.flushSecret)) return;
    throw new HttpError(401, "unauthorized", "x-zoe-flush-secret does not match ZOE_FLUSH_SECRET");
  }
  const token = /^Bearer\s+(\S+)$/i.exec(req.headers.get("authorization") ?? "")?.[1];
  if (!token)
    throw new HttpError(
      401,
      "unauthorized",
      "Missing Authorization: Bearer <service_role key> (or x-zoe-flush-secret)",
    );
  if (config.serviceKeys.some((key) => timingSafeEqual(token, key))) return;
  // Without a JWT secret the signature cannot be checked here. Reading the role
  // unverified is only safe behind the platform's verify_jwt, and only needed
  // when the service key itself is unknown: the platform injects it, so on
  // Supabase a forged {role:"service_role"} never passes, even with
  // verify_jwt = false.
  if (!config.jwtSecret && config.serviceKeys.length > 0) {
    throw new HttpError(401, "unauthorized", "Bearer token is not this project's service_role key");
  }
  let role: unknown;
  try {
    role = (config.jwtSecret ? await verifyJwt(token, config.jwtSecret) : decodeJwt(token)).role;
  } catch (error) {
    throw new HttpError(401, "unauthorized", `Invalid JWT: ${(error as Error).message}`);
  }
  if (role !== "service_role") {
    throw new HttpError(
      401,
      "unauthorized",
      `Role ${JSON.stringify(role ?? null)} may not flush events; the service_role key is required`,
    );
  }
}

export async function readBody(req: Request, limit: number): Promise<Uint8Array> {
  const tooLarge = () => new HttpError(413, "payload_too_large", `Request body exceeds ${limit} bytes`, { limit });
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

export function parseJson(bytes: Uint8Array): unknown {
  try {
    return JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(bytes));
  } catch (cause) {
    throw new HttpError(400, "malformed_json", `Request body is not valid UTF-8 JSON: ${(cause as Error).message}`);
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

export interface Envelope {
  mode: Mode;
  events: unknown[];
  backlog: number | null;
  state: StateSnapshot | null;
  afterKey: string | null;
  writer: Writer | null;
}

/** The local store that sent the batch and when its current start began (docs/flushing.md, "Store identity"). */
export interface Writer {
  store_id: string;
  started_at: string;
}

const ENVELOPE_KEYS = new Set(["mode", "events", "backlog", "state", "after_key", "writer"]);
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export function checkEnvelope(body: unknown, config: IngestConfig): Envelope {
  const errors: FieldError[] = [];
  if (!isObject(body))
    throw new HttpError(400, "invalid_request", "Request body must be a JSON object", {
      errors: [{ path: "", message: "Expected object" }],
    });
  for (const key of Object.keys(body))
    if (!ENVELOPE_KEYS.has(key)) errors.push({ path: `/${key}`, message: "Unexpected property" });
  if (!MODES.includes(body.mode as Mode))
    errors.push({ path: "/mode", message: `Expected one of: ${MODES.join(", ")}` });
  const events = body.events;
  if (!Array.isArray(events)) errors.push({ path: "/events", message: "Expected array" });
  // No events is a state-only flush: the snapshot must reach the remote when no event is pending.
  else if (events.length < 1 && (body.state ?? null) === null)
    errors.push({ path: "/events", message: "Expected at least 1 event, or a state snapshot" });
  else if (events.length > config.maxEvents)
    errors.push({ path: "/events", message: `Expected at most ${config.maxEvents} events, got ${events.length}` });
  const backlog = body.backlog ?? null;
  if (backlog !== null && !(Number.isSafeInteger(backlog) && (backlog as number) >= 0)) {
    errors.push({ path: "/backlog", message: "Expected a non-negative integer" });
  }
  const afterKey = body.after_key ?? null;
  if (afterKey !== null && !(typeof afterKey === "string" && afterKey.length >= 1 && afterKey.length <= 256)) {
    errors.push({ path: "/after_key", message: "Expected an idempotency key (1 to 256 characters) or null" });
  }
  const writer = body.writer ?? null;
  if (writer !== null) {
    if (!isObject(writer)) errors.push({ path: "/writer", message: "Expected object or null" });
    else {
      for (const key of Object.keys(writer))
        if (key !== "store_id" && key !== "started_at")
          errors.push({ path: `/writer/${key}`, message: "Unexpected property" });
      if (typeof writer.store_id !== "string" || !UUID.test(writer.store_id))
        errors.push({ path: "/writer/store_id", message: "Expected a UUID" });
      if (typeof writer.started_at !== "string" || !isIsoTimestamp(writer.started_at))
        errors.push({ path: "/writer/started_at", message: "Expected ISO 8601 date-time with offset" });
    }
  }
  const state = body.state ?? null;
  if (state !== null) {
    if (!isObject(state)) errors.push({ path: "/state", message: "Expected object or null" });
    else {
      for (const key of Object.keys(state))
        if (key !== "ts" && key !== "state") errors.push({ path: `/state/${key}`, message: "Unexpected property" });
      if (typeof state.ts !== "string" || !isIsoTimestamp(state.ts))
        errors.push({ path: "/state/ts", message: "Expected ISO 8601 date-time with offset" });
      if (!isObject(state.state)) errors.push({ path: "/state/state", message: "Expected object" });
      else {
        const problem = unstorableJson(state.state);
        if (problem) errors.push({ path: "/state/state", message: problem });
      }
    }
  }
  if (errors.length) {
    const tooMany = Array.isArray(events) && events.length > config.maxEvents;
    throw new HttpError(
      400,
      tooMany ? "batch_too_large" : "invalid_request",
      `Invalid batch: ${errors.map((e) => `${e.path || "/"} ${e.message}`).join("; ")}`,
      {
        errors,
        maxEvents: config.maxEvents,
      },
    );
  }
  return {
    mode: body.mode as Mode,
    events: events as unknown[],
    backlog: backlog as number | null,
    state: state as StateSnapshot | null,
    afterKey: afterKey as string | null,
    writer: writer as Writer | null,
  };
}

export function field<T>(event: unknown, key: string, type: "string" | "number"): T | null {
  return isObject(event) && typeof event[key] === type ? (event[key] as T) : null;
}
