// OpenAPI references for routes that validate their own bodies: the schemas
// here are the shared TypeBox schemas themselves, so /docs cannot drift from
// what the routes accept.
import { type TSchema, Type } from "@sinclair/typebox";
import { EventInputSchema, MAX_BATCH_EVENTS, ModeSchema, StoredEventSchema } from "./schema.ts";

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

type Route = Partial<{ query: TSchema; body: TSchema; response: Record<number, TSchema> }>;

const routes: Record<string, Record<string, Route>> = {
  "/local/events": {
    post: {
      body: Type.Union([EventInputSchema, Type.Array(EventInputSchema, { minItems: 1, maxItems: MAX_BATCH_EVENTS })]),
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
    post: { body: State, response: { 201: Type.Object({ mode: ModeSchema, ts: Type.String(), last_seq: Type.Integer() }), 400: ErrorBody } },
    get: { query: ModeQuery, response: { 200: State, 400: ErrorBody, 401: ErrorBody } },
  },
  "/local/stream": {
    get: {
      query: Type.Object({
        mode: ModeSchema,
        last_event_id: Type.Optional(Type.Integer({ minimum: 0 })),
        since_seq: Type.Optional(Type.Integer({ minimum: 0 })),
        token: Type.Optional(Type.String()),
      }),
      response: {
        200: Type.String({
          description:
            "text/event-stream: each event as `id: <seq>` + `data: <event JSON>`; resumes from Last-Event-ID; `:` heartbeats.",
        }),
      },
    },
  },
};

export const apiReferences = routes as never;
