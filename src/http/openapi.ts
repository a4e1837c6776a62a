// OpenAPI references for routes that validate their own bodies: the schemas
// here are the shared TypeBox schemas themselves, so /docs cannot drift from
// what the routes accept.
import { type TSchema, Type } from "@sinclair/typebox";
import { EventInputSchema, MAX_BATCH_EVENTS, ModeSchema, StoredEventSchema } from "../domain/schema.ts";

const ErrorBody = Type.Object({
  error: Type.Object({
    code: Type.String(),
    message: Type.String(),
    details: Type.Unknown({ description: "Field errors: [{path, message}] where the path is a JSON pointer." }),
  }),
});
const AppendResult = Type.Object({
  id: Type.String(),
  seq: Type.Integer(),
  idempotency_key: Type.String(),
  duplicate: Type.Boolean(),
});
const ModeQuery = Type.Object({ mode: ModeSchema, token: Type.Optional(Type.String()) });
const State = Type.Object(
  { mode: ModeSchema, cash: Type.Optional(Type.Unknown()), holdings: Type.Optional(Type.Unknown()), positions: Type.Optional(Type.Unknown()) },
  { additionalProperties: true },
);

const Health = Type.Object(
  {
    backlog: Type.Integer({ description: "Events not yet flushed to the remote." }),
    oldest_unflushed_age_ms: Type.Union([Type.Integer(), Type.Null()]),
    last_flush_ts: Type.Union([Type.String(), Type.Null()]),
    last_flush_status: Type.Union([Type.String(), Type.Null()]),
    remote_configured: Type.Boolean(),
    uptime_s: Type.Integer(),
  },
  { additionalProperties: true },
);
const StateView = Type.Object(
  {
    mode: ModeSchema,
    cash: Type.Unknown(),
    holdings: Type.Unknown(),
    positions: Type.Unknown(),
    state_ts: Type.Union([Type.String(), Type.Null()], { description: "When the newest snapshot was stored; null if none." }),
    last_seq: Type.Integer(),
    health: Health,
  },
  { additionalProperties: true, description: "The newest snapshot's fields, plus last_seq and health." },
);

type Route = Partial<{ query: TSchema; response: Record<number, TSchema> }>;

// Routes read their own bodies (`parse: "none"`), for which the plugin emits
// an empty requestBody; so the body schemas go in each route's `detail`.
const jsonBody = (schema: TSchema, description: string) => ({
  description,
  required: true,
  content: { "application/json": { schema } },
});

export const EventsRequestBody = Type.Union([EventInputSchema, Type.Array(EventInputSchema, { minItems: 1, maxItems: MAX_BATCH_EVENTS })]);

/** OpenAPI `detail` for each route, keyed by "METHOD path". */
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
    requestBody: jsonBody(EventsRequestBody, "An event, or an array of events."),
  },
  "GET /local/events": {
    summary: "List events",
    description: "Events with seq > since_seq, ascending; without since_seq, the newest `limit` events, still ascending.",
  },
  "POST /local/state": {
    summary: "Store a state snapshot",
    description: "The bot's state {mode, cash, holdings, positions, ...}; the newest snapshots per mode are kept.",
    requestBody: jsonBody(State, "A state snapshot; any fields besides mode are kept as sent."),
  },
  "GET /local/state": {
    summary: "Latest state and health",
    description: "{cash, holdings, positions, health, last_seq} from the newest snapshot of the mode.",
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
  },
  "GET /health": { summary: "Liveness", description: "200 while the process serves and the database answers, else 503." },
} as const;

const routes: Record<string, Record<string, Route>> = {
  "/local/events": {
    post: {
      response: {
        201: Type.Union([AppendResult, Type.Object({ events: Type.Array(AppendResult) })]),
        200: Type.Union([AppendResult, Type.Object({ events: Type.Array(AppendResult) })], { description: "Every event was a duplicate." }),
        400: ErrorBody,
        401: ErrorBody,
        409: ErrorBody,
        413: ErrorBody,
        415: ErrorBody,
        503: ErrorBody,
      },
    },
    get: {
      query: Type.Object({
        mode: ModeSchema,
        since_seq: Type.Optional(Type.Integer({ minimum: 0 })),
        limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000, default: 50 })),
        token: Type.Optional(Type.String()),
      }),
      response: { 200: Type.Array(StoredEventSchema), 400: ErrorBody, 401: ErrorBody },
    },
  },
  "/local/state": {
    post: {
      response: {
        201: Type.Object({ mode: ModeSchema, ts: Type.String(), last_seq: Type.Integer() }),
        400: ErrorBody,
        401: ErrorBody,
        413: ErrorBody,
        415: ErrorBody,
        503: ErrorBody,
      },
    },
    get: { query: ModeQuery, response: { 200: StateView, 400: ErrorBody, 401: ErrorBody } },
  },
  "/health": {
    get: {
      response: {
        200: Type.Object({ status: Type.Literal("ok"), db: Type.String(), modes: Type.Record(Type.String(), Health) }),
        503: Type.Object({ status: Type.Literal("unavailable"), db: Type.String(), modes: Type.Null() }),
      },
    },
  },
  "/local/stream": {
    get: {
      query: Type.Object({
        mode: ModeSchema,
        last_event_id: Type.Optional(Type.Integer({ minimum: 0 })),
        since_seq: Type.Optional(Type.Integer({ minimum: 0 })),
        heartbeat: Type.Optional(Type.Union([Type.Literal("comment"), Type.Literal("event")], { description: "event: heartbeats as `event: heartbeat` (EventSource cannot see comments)." })),
        token: Type.Optional(Type.String()),
      }),
      response: {
        200: Type.String({
          description:
            "text/event-stream: each event as `id: <seq>` + `data: <event JSON>`; resumes from Last-Event-ID; `event: reset` for a position beyond the newest seq; heartbeats.",
        }),
      },
    },
  },
};

export const apiReferences = routes as never;
