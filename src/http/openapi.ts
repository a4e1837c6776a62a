// The OpenAPI description of every route: summary, security, request body and
// each answer (status, media type, headers, schema), keyed "METHOD path" for
// the routes' `detail`, plus the query schemas the plugin turns into
// parameters. Bodies the routes validate themselves are the shared TypeBox
// schemas, answers the ones of openapi-schemas.ts, which tests hold to the
// routes' real answers; CI lints the whole document (tests/http/openapi-lint.test.ts).
import { type TSchema, Type } from "@sinclair/typebox";
import {
  EventInputSchema,
  MAX_BATCH_EVENTS,
  ModeSchema,
  SEVERITIES,
  StoredEventSchema,
} from "../../supabase/functions/_shared/event-schema.ts";
import { MAX_FILTER_VALUES } from "./query.ts";
import * as S from "./openapi-schemas.ts";

export const securitySchemes = {
  bearerToken: {
    type: "http",
    scheme: "bearer",
    description:
      "ZOE_API_TOKEN as `Authorization: Bearer <token>`. When ZOE_API_TOKEN is set every route but /docs needs it; a 401 answers " +
      '`WWW-Authenticate: Bearer realm="zoe-local"` (with `error="invalid_token"` when a wrong token was sent). Without ZOE_API_TOKEN the API is open.',
  },
  queryToken: {
    type: "apiKey",
    in: "query",
    name: "token",
    description:
      "The same token as `?token=`, taken on reads (GET, HEAD) only: EventSource cannot send headers. Never on writes.",
  },
} as const;

export const servers = [
  { url: "http://127.0.0.1:8765", description: "The default listen address (HOST, PORT); paths have no prefix." },
];

const READ: Record<string, string[]>[] = [{ bearerToken: [] }, { queryToken: [] }];
const WRITE: Record<string, string[]>[] = [{ bearerToken: [] }];

type Headers = Record<string, { description: string; schema: TSchema }>;
const RETRY_AFTER: Headers = {
  "Retry-After": { description: "Seconds to wait before retrying.", schema: Type.Integer({ minimum: 1 }) },
};
const CHALLENGE: Headers = {
  "WWW-Authenticate": {
    description: 'Bearer realm="zoe-local", plus error="invalid_token" when a wrong token was sent.',
    schema: Type.String(),
  },
};

const content = (mediaType: string, schema: TSchema) => ({ [mediaType]: { schema } });
const answer = (description: string, schema: TSchema, headers?: Headers) => ({
  description,
  ...(headers ? { headers } : {}),
  content: content("application/json", schema),
});
const error = (description: string, headers?: Headers) => answer(description, S.ErrorBody, headers);

const BAD_REQUEST = error(
  "Bad request: `malformed_json`, `invalid_request` (a field or a query parameter; `details` names each), `incomplete_body`.",
);
const BAD_QUERY = error(
  "`invalid_request`: a query parameter is missing, malformed or unknown; `details` names it (`?param`).",
);
const UNAUTHORIZED = error("`unauthorized`: the API token is missing or wrong (when ZOE_API_TOKEN is set).", CHALLENGE);
const TOO_LARGE = error("`payload_too_large`: the body exceeds the request limit (ZOE_MAX_REQUEST_BYTES, 1 MiB).");
const UNSUPPORTED = error("`unsupported_media_type`: Content-Type is not application/json.");
const STORE_DOWN = error(
  "`store_unavailable`: the disk or database cannot take writes; nothing was stored.",
  RETRY_AFTER,
);
const NO_QUARANTINE = error("`not_found`: this service has no flusher, so no quarantine.");
const bodyErrors = { 400: BAD_REQUEST, 401: UNAUTHORIZED, 413: TOO_LARGE, 415: UNSUPPORTED };

const jsonBody = (schema: TSchema, description: string) => ({
  description,
  required: true,
  content: content("application/json", schema),
});

export const EventsRequestBody = Type.Union([
  EventInputSchema,
  Type.Array(EventInputSchema, { minItems: 1, maxItems: MAX_BATCH_EVENTS }),
]);

/** OpenAPI `detail` of each route, keyed by "METHOD path". */
export const routeDocs = {
  "POST /local/events": {
    summary: "Store events",
    description:
      `One event object, or an array of 1..${MAX_BATCH_EVENTS}. Atomic: all are committed or none. ` +
      "Answers after the commit: 201 with {id, seq, idempotency_key, duplicate} (or {events:[...]} in request order); " +
      "an event whose idempotency_key is already stored for the same event comes back with the stored id and seq and duplicate:true (200 when all are duplicates); " +
      "the key stored for a different event (mode, source, type, subtype, symbol, severity, body or meta differ; ts and id are not compared) refuses the request: " +
      "409 idempotency_conflict, details [{path, message, stored_event: {id, mode, seq}, fields}]. idempotency_key: 1 to 256 characters. " +
      "Unknown fields are rejected; the request body may be at most 1 MiB (413). A failing disk answers 503 with Retry-After.",
    security: WRITE,
    requestBody: jsonBody(EventsRequestBody, "An event, or an array of events."),
    responses: {
      201: answer("Stored: one result, or {events} in request order.", S.AppendAnswer),
      200: answer(
        "Every event was a duplicate of a stored one (duplicate: true, the stored id and seq).",
        S.AppendAnswer,
      ),
      ...bodyErrors,
      409: error(
        "`idempotency_conflict`: a key already stored for a different event; `conflict`: an id already stored under another key.",
      ),
      503: error(
        "`store_unavailable` (disk or database), `backlog_full` or `disk_low` (the bounded store refuses the batch).",
        RETRY_AFTER,
      ),
    },
  },
  "GET /local/events": {
    summary: "List events",
    description:
      "Events with seq > since_seq, ascending; without since_seq, the newest `limit` events, still ascending. " +
      "before_seq keeps only seqs below it (page back: the first seq of the last answer). " +
      "type, subtype and symbol take comma lists of exact values, severity the least level kept; each given one must hold " +
      "(`subtype=BUY_FILLED,SELL_FILLED&severity=warn`: fills of severity warn or worse). " +
      "A subtype or severity filter reads its own index (one seek per value), so the newest fills come at once however many ticks followed them.",
    security: READ,
    responses: { 200: answer("The events, by seq.", S.StoredEvents), 400: BAD_QUERY, 401: UNAUTHORIZED },
  },
  "POST /local/state": {
    summary: "Store a state snapshot",
    description: "The bot's state {mode, cash, holdings, positions, ...}; the newest snapshots per mode are kept.",
    security: WRITE,
    requestBody: jsonBody(S.StateInput, "A state snapshot; any fields besides mode are kept as sent."),
    responses: { 201: answer("Stored.", S.StateStored), ...bodyErrors, 503: STORE_DOWN },
  },
  "GET /local/state": {
    summary: "Latest state and health",
    description: "{cash, holdings, positions, health, last_seq} from the newest snapshot of the mode.",
    security: READ,
    responses: {
      200: answer("The newest snapshot (null fields when there is none) and the mode's health.", S.StateView),
      400: BAD_QUERY,
      401: UNAUTHORIZED,
    },
  },
  "GET /local/stream": {
    summary: "Live event stream (SSE)",
    description:
      "Server-Sent Events. Each event is an unnamed message with `id: <seq>` and `data: <event JSON>`. " +
      "Replays the events after the position (Last-Event-ID header, or ?last_event_id= / ?since_seq=), then goes live " +
      "with no gap and no duplicate; no position means live only. A position beyond the newest seq is answered with " +
      "`id: <newest>` + `event: reset` + `data: {newest_seq, requested_seq}`, then the stream goes on live from the newest seq. " +
      "Sends `retry:` once and a heartbeat every ZOE_SSE_HEARTBEAT_MS (2 s): a `:` comment, or with ?heartbeat=event an " +
      "`event: heartbeat` with data {newest_seq, interval_ms}, the first at once. " +
      "A client that falls too far behind is disconnected and resumes with Last-Event-ID.",
    security: READ,
    responses: {
      200: {
        description: "The stream, open until the client leaves, falls too far behind, or the service shuts down.",
        content: content(
          "text/event-stream",
          Type.String({ description: "`id: <seq>` + `data: <event JSON>` messages, `event: reset`, heartbeats." }),
        ),
      },
      400: error(
        "`invalid_request`: a bad mode, position (Last-Event-ID, last_event_id, since_seq) or heartbeat, or an unknown parameter.",
      ),
      401: UNAUTHORIZED,
      429: error(
        "`too_many_streams`: this address has as many streams open as ZOE_SSE_MAX_CLIENTS_PER_IP allows.",
        RETRY_AFTER,
      ),
      503: error("`too_many_streams`: as many streams are open as ZOE_SSE_MAX_CLIENTS allows.", RETRY_AFTER),
    },
  },
  "HEAD /local/stream": {
    summary: "Check stream parameters",
    description:
      "Checks the token and the parameters of GET /local/stream and answers its headers, without opening a stream.",
    security: READ,
    responses: {
      200: { description: "GET would open a stream (Content-Type: text/event-stream)." },
      400: { description: "`invalid_request`: GET would refuse these parameters." },
      401: { description: "`unauthorized`: the API token is missing or wrong.", headers: CHALLENGE },
    },
  },
  "GET /health": {
    summary: "Liveness",
    description: "200 while the process serves and the database answers, else 503. GET /ready is readiness.",
    security: READ,
    responses: {
      200: answer("Serving; each mode's flush health.", S.HealthUp),
      400: BAD_QUERY,
      401: UNAUTHORIZED,
      503: answer("The database does not answer.", S.HealthDown),
    },
  },
  "GET /ready": {
    summary: "Readiness",
    description:
      "200 when this instance takes events now; 503 with reasons while it drains for shutdown, the database cannot be written (repeated write failures within a minute), or the backlog/disk limits refuse ordinary events. GET /health is liveness.",
    security: READ,
    responses: {
      200: answer("Ready.", S.ReadyAnswer),
      400: BAD_QUERY,
      401: UNAUTHORIZED,
      503: answer("Not ready; `reasons` says why.", S.ReadyAnswer),
    },
  },
  "GET /metrics": {
    summary: "Prometheus metrics",
    description:
      "Text exposition format: ingest counts and latency, backlog (events, bytes, oldest age) against its caps, flush sends, quarantine, SSE clients, DB and WAL size, process metrics.",
    security: READ,
    responses: {
      200: { description: "Prometheus text format 0.0.4.", content: content("text/plain", Type.String()) },
      400: BAD_QUERY,
      401: UNAUTHORIZED,
    },
  },
  "GET /local/status": {
    summary: "Service status for operators",
    description:
      "Everything `zoe-local status` prints: overall status (ok, degraded, not_ready) and the problems found, build and uptime, readiness, " +
      "database path and size, free disk, remote, capacity against the limits, and per mode the backlog, oldest unflushed age, last flush, flusher state, quarantine, last seq and stream clients.",
    security: READ,
    responses: { 200: answer("The status.", S.StatusAnswer), 400: BAD_QUERY, 401: UNAUTHORIZED },
  },
  "POST /local/flush": {
    summary: "Flush now",
    description:
      "Asks the flusher to send the backlog of `mode` (both modes without it) now, cutting a backoff wait short. 202 at once; with ?wait=true, 200 once the flush has drained the queue, " +
      "or 502 flush_failed as soon as an attempt fails (the flusher keeps retrying on its own). 409 no_remote without SUPABASE_URL.",
    security: WRITE,
    responses: {
      200: answer("With wait=true: the flush drained the queue.", S.FlushDone),
      202: answer("The flush was asked for; it runs on.", S.FlushStarted),
      400: BAD_QUERY,
      401: UNAUTHORIZED,
      409: error("`no_remote`: no remote is configured (SUPABASE_URL is unset)."),
      502: error(
        "`flush_failed`: with wait=true, an attempt failed; details {mode, modes}. The flusher keeps retrying.",
      ),
      503: error("`draining`: the service is shutting down (it makes one last flush on its own).", RETRY_AFTER),
    },
  },
  "GET /local/history": {
    summary: "The last hour, for charts",
    description:
      "Per interval (ZOE_HISTORY_INTERVAL_MS, 10 s) of the last hour, kept in memory since the start: backlog, ingest and drain rates, mean and longest send to the remote, failed sends, oldest unflushed age. One array per series, aligned on t (epoch ms).",
    security: READ,
    responses: { 200: answer("The series.", S.HistoryAnswer), 400: BAD_QUERY, 401: UNAUTHORIZED },
  },
  "GET /local/quarantine": {
    summary: "List quarantined events",
    description:
      "Events the remote rejected for good (or that fail the shared schema), set aside so the flush queue keeps moving: " +
      "{mode, count, events:[{event, reason, errors, remote_status, attempts, quarantined_at}]}, by seq; since_seq pages.",
    security: READ,
    responses: {
      200: answer("The mode's quarantined events, by seq.", S.QuarantineList),
      400: BAD_QUERY,
      401: UNAUTHORIZED,
      404: NO_QUARANTINE,
    },
  },
  "POST /local/quarantine/retry": {
    summary: "Retry quarantined events",
    description:
      "Body {mode, ids?}: puts these quarantined events (all of the mode without ids) back in the flush queue after a fix, and flushes at once.",
    security: WRITE,
    requestBody: jsonBody(S.RetryInput, "The mode, and the events to release (all of the mode without ids)."),
    responses: { 200: answer("Released.", S.RetryAnswer), ...bodyErrors, 404: NO_QUARANTINE },
  },
  "GET /local/quarantine/:id": {
    summary: "One quarantined event",
    description:
      "{event, reason, errors, remote_status, attempts, quarantined_at} of a quarantined event; 404 when it is not (or no longer) quarantined.",
    security: READ,
    responses: {
      200: answer("The quarantined event.", S.QuarantineEntry),
      400: error("`invalid_request`: the id is not a lower-case UUID, or a query parameter is unknown."),
      401: UNAUTHORIZED,
      404: error("`not_found`: the event is not in the quarantine (never quarantined, or released)."),
    },
  },
} as const;

const ModeQuery = Type.Object({ mode: ModeSchema });
/** A comma list of 1..MAX_FILTER_VALUES values, none empty (query.ts checks each value's length and repeats). */
const filterList = (maxLength: number, description: string) =>
  Type.String({
    pattern: `^[^,]{1,${maxLength}}(,[^,]{1,${maxLength}}){0,${MAX_FILTER_VALUES - 1}}$`,
    description,
  });
const Since = Type.Integer({ minimum: 0 });

/** The query schemas, by path and method: the plugin lists their fields as parameters. */
const queries: Record<string, Record<string, { query?: TSchema; params?: TSchema }>> = {
  "/local/events": {
    get: {
      query: Type.Object({
        mode: ModeSchema,
        since_seq: Type.Optional(Since),
        before_seq: Type.Optional(
          Type.Integer({
            minimum: 1,
            description: "Only events with seq < before_seq (without since_seq: the newest of them).",
          }),
        ),
        limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000, default: 50 })),
        type: Type.Optional(filterList(128, "Only these types: a comma list of exact values, e.g. ORDER,RISK.")),
        subtype: Type.Optional(
          filterList(
            128,
            "Only these subtypes: a comma list of exact values, e.g. BUY_FILLED,SELL_FILLED,KILL_SWITCH.",
          ),
        ),
        symbol: Type.Optional(
          filterList(64, "Only these symbols: a comma list of exact values (case matters), e.g. AAPL,MSFT."),
        ),
        // An enum with its description: the plugin turns a union of literals into a bare enum.
        severity: Type.Optional(
          Type.Unsafe<string>({
            type: "string",
            enum: [...SEVERITIES],
            description:
              "At least this severity (as `zoe-local tail --severity`): warn keeps warn, error and critical.",
          }),
        ),
      }),
    },
  },
  "/local/state": { get: { query: ModeQuery } },
  "/local/stream": {
    get: {
      query: Type.Object({
        mode: ModeSchema,
        last_event_id: Type.Optional(Since),
        since_seq: Type.Optional(Since),
        heartbeat: Type.Optional(
          Type.Union([Type.Literal("comment"), Type.Literal("event")], {
            description: "event: heartbeats as `event: heartbeat` (EventSource cannot see comments).",
          }),
        ),
      }),
    },
  },
  "/local/history": { get: { query: ModeQuery } },
  "/local/quarantine": {
    get: {
      query: Type.Object({
        mode: ModeSchema,
        since_seq: Type.Optional(Since),
        limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000, default: 50 })),
      }),
    },
  },
  "/local/flush": {
    post: {
      query: Type.Object({
        mode: Type.Optional(ModeSchema),
        wait: Type.Optional(
          Type.Union([Type.Literal("true"), Type.Literal("false"), Type.Literal("1"), Type.Literal("0")], {
            description: "Wait for the flush to end.",
          }),
        ),
      }),
    },
  },
  "/local/quarantine/:id": {
    get: { params: Type.Object({ id: Type.String({ description: "The event id (lower-case UUID)." }) }) },
  },
};
queries["/local/stream"]!.head = queries["/local/stream"]!.get!;

export const apiReferences = queries as never;

/**
 * The schemas generated clients get named types for (components.schemas):
 * every copy of one of them in the document, in a route or inside another
 * named schema, becomes a `$ref` to it.
 */
export const namedSchemas: Record<string, TSchema> = {
  Mode: ModeSchema,
  Event: EventInputSchema,
  EventsRequest: EventsRequestBody,
  StoredEvent: StoredEventSchema,
  Ack: S.AppendResult,
  AppendAnswer: S.AppendAnswer,
  Error: S.ErrorBody,
  FieldError: S.FieldErrorSchema,
  StateInput: S.StateInput,
  StateStored: S.StateStored,
  StateView: S.StateView,
  Capacity: S.Capacity,
  Health: S.Health,
  HealthUp: S.HealthUp,
  HealthDown: S.HealthDown,
  Ready: S.ReadyAnswer,
  Status: S.StatusAnswer,
  FlushStarted: S.FlushStarted,
  FlushDone: S.FlushDone,
  History: S.HistoryAnswer,
  QuarantineEntry: S.QuarantineEntry,
  QuarantineList: S.QuarantineList,
  QuarantineRetry: S.RetryInput,
  QuarantineRetryAnswer: S.RetryAnswer,
};

/** JSON with object keys sorted: two copies of a schema compare equal whatever order their keys were copied in. */
function canonical(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonical).join(",")}]`;
  if (value !== null && typeof value === "object") {
    const entries = Object.entries(value).filter(([, v]) => v !== undefined);
    entries.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonical(v)}`).join(",")}}`;
  }
  return JSON.stringify(value) ?? "null";
}

/**
 * `document` with each copy of a named schema replaced by a `$ref`, and the
 * named schemas themselves in components.schemas (referring to one another).
 * The outermost match wins, so an Ack inside an AppendAnswer inside a route
 * is one `$ref` to AppendAnswer.
 */
export function withNamedSchemas<T extends { paths: unknown; components?: Record<string, unknown> }>(
  document: T,
  named: Record<string, TSchema> = namedSchemas,
): T {
  const byShape = new Map<string, string>();
  for (const [name, schema] of Object.entries(named)) {
    const shape = canonical(JSON.parse(JSON.stringify(schema)));
    const twin = byShape.get(shape);
    if (twin) throw new Error(`OpenAPI schemas ${twin} and ${name} are the same schema: name it once`);
    byShape.set(shape, name);
  }
  const refer = (node: unknown, self?: string): unknown => {
    if (Array.isArray(node)) return node.map((item) => refer(item));
    if (node === null || typeof node !== "object") return node;
    const name = byShape.get(canonical(node));
    if (name !== undefined && name !== self) return { $ref: `#/components/schemas/${name}` };
    return Object.fromEntries(Object.entries(node).map(([key, value]) => [key, refer(value)]));
  };
  const schemas = Object.fromEntries(
    Object.entries(named).map(([name, schema]) => [name, refer(JSON.parse(JSON.stringify(schema)), name)]),
  );
  const components = document.components ?? {};
  return {
    ...document,
    paths: refer(document.paths),
    components: {
      ...components,
      schemas: { ...(components.schemas as Record<string, unknown> | undefined), ...schemas },
    },
  };
}
