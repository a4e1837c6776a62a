// POST /local/events without the framework: the ingest hot path as one
// precompiled handler. serveApp gives it to Bun.serve's native router, and the
// Elysia route calls the same function, so app.handle() tests exercise exactly
// what the wire runs. It does everything the app-wide hooks did for this
// route — the API token (auth.ts's policy), CORS headers (cors.ts's), the
// shared error answer, the failure hook — with the header sets and the
// token's digest computed once.
//
// Where the time went per event before (BENCHMARKS.md has the budget): Elysia's
// per-request context, hooks and response mapping, CORS headers recomputed per
// request, a second Response to merge them, the depth check building a JSON
// pointer for every key. None of it changed a verdict.
import { UnauthorizedError, ValidationError, ZoeError } from "../domain/errors.ts";
import {
  checkEventInput,
  type EventInput,
  type FieldError,
  MAX_BATCH_EVENTS,
} from "../../supabase/functions/_shared/event-schema.ts";
import type { Logger } from "../lib/log.ts";
import type { AppendResult, EventStore } from "../store/store.ts";
import { readJsonBody } from "./body.ts";
import { writeAuthorizer } from "./auth.ts";
import { corsAnswerHeaders } from "./cors.ts";
import { BEARER_CHALLENGE, INVALID_TOKEN_CHALLENGE, InvalidTokenError } from "./responses.ts";
import type { OriginRefused } from "./cors.ts";

// Enough field errors to fix a request; a 1000-event batch could produce 20,000.
const MAX_DETAILS = 100;

export interface IngestHooks {
  /** Throws a 503 ZoeError to refuse a batch; the returned function runs once the append settled. */
  admit?(events: EventInput[]): () => void;
  /** The append committed; `ms` since the handler started. */
  ingested?(events: EventInput[], results: AppendResult[], ms: number): void;
  /** The request ended in this error answer (request null: an error Bun caught outside any request handler). */
  failed?(error: unknown, status: number, request: Request | null): void;
}

export interface IngestOptions {
  store: EventStore;
  maxRequestBytes: number;
  apiToken: string | null;
  corsOrigins: readonly string[];
  logger: Logger;
  hooks?: IngestHooks;
  /** Told of a request from an origin CORS refuses (src/http/cors.ts). */
  originRefused?: OriginRefused;
}

/** Throws the ValidationError that names the first bad event and field, with up to MAX_DETAILS field errors. */
export function assertEventBatch(events: unknown[], single: boolean): asserts events is EventInput[] {
  if (events.length === 0)
    throw new ValidationError("Cannot store events: the array is empty", [
      { path: "", message: "Expected 1 to 1000 events" },
    ]);
  if (events.length > MAX_BATCH_EVENTS) {
    throw new ValidationError(
      `Cannot store events: ${events.length} events exceed the limit of ${MAX_BATCH_EVENTS} per request`,
      [{ path: "", message: `Expected at most ${MAX_BATCH_EVENTS} events` }],
    );
  }
  let errors: FieldError[] | null = null;
  for (let i = 0; i < events.length && (errors?.length ?? 0) < MAX_DETAILS; i++) {
    const found = checkEventInput(events[i], single ? "" : `/${i}`);
    if (found.length === 0) continue;
    errors ??= [];
    // TypeBox reports a missing field twice ("required", then "Expected string"): keep the first.
    const seen = new Set<string>();
    for (const e of found) {
      if (!seen.has(e.path)) errors.push(e);
      seen.add(e.path);
    }
  }
  if (errors) {
    const where = single ? "the event" : `event ${errors[0]!.path.split("/")[1]}`;
    throw new ValidationError(
      `Cannot store events: ${where} is invalid at ${errors[0]!.path || "/"}: ${errors[0]!.message}`,
      errors,
    );
  }
}

export function createIngest(options: IngestOptions): (request: Request) => Promise<Response> {
  const { store, hooks, logger } = options;
  const authorize = writeAuthorizer(options.apiToken);
  const json = { "content-type": "application/json" };
  // Every header set an answer can carry, built once per allowed origin: an
  // answer's headers are one lookup, never a merge.
  const perOrigin = <T>(extra: Record<string, string>, make: (headers: Record<string, string>) => T) => {
    const base = make({ ...corsAnswerHeaders(null), ...json, ...extra });
    const byOrigin = new Map(options.corsOrigins.map((o) => [o, make({ ...corsAnswerHeaders(o), ...json, ...extra })]));
    return (request: Request): T => {
      const origin = request.headers.get("origin");
      if (origin === null) return base;
      const allowed = byOrigin.get(origin);
      if (allowed) return allowed;
      options.originRefused?.(request, origin);
      return base;
    };
  };
  const asObject = (h: Record<string, string>) => h;
  const headersFor = perOrigin({}, asObject);
  const challenged = perOrigin({ "www-authenticate": BEARER_CHALLENGE }, asObject);
  const invalidToken = perOrigin({ "www-authenticate": INVALID_TOKEN_CHALLENGE }, asObject);
  // A Response copies the Headers it is given, so one instance serves every
  // answer: a third of the cost of building them from an object each time.
  const answerHeaders = perOrigin({}, (h) => new Headers(h));

  const failure = (error: unknown, request: Request): Response => {
    const base =
      error instanceof InvalidTokenError
        ? invalidToken(request)
        : error instanceof UnauthorizedError
          ? challenged(request)
          : headersFor(request);
    if (!(error instanceof ZoeError)) {
      logger.error("unhandled error", { error, path: "/local/events" });
      hooks?.failed?.(error, 500, request);
      return new Response('{"error":{"code":"internal","message":"Internal error","details":null}}', {
        status: 500,
        headers: base,
      });
    }
    const headers = error.retryAfter === undefined ? base : { ...base, "retry-after": String(error.retryAfter) };
    // An unauthorised request is answered before any route runs, as on every other route: no failure hook.
    if (!(error instanceof UnauthorizedError)) hooks?.failed?.(error, error.status, request);
    return new Response(JSON.stringify(error.toJSON()), { status: error.status, headers });
  };

  return async (request) => {
    const started = performance.now();
    try {
      authorize(request);
      const body = await readJsonBody(request, options.maxRequestBytes, "events");
      const single = !Array.isArray(body);
      const events = single ? [body] : (body as unknown[]);
      assertEventBatch(events, single);
      const release = hooks?.admit?.(events);
      let results: AppendResult[];
      try {
        results = await store.append(events);
      } catch (error) {
        throw single ? asSingleEvent(error) : error;
      } finally {
        release?.();
      }
      hooks?.ingested?.(events, results, performance.now() - started);
      let fresh = false;
      for (const r of results) if (!r.duplicate) fresh = true;
      return new Response(JSON.stringify(single ? results[0] : { events: results }), {
        status: fresh ? 201 : 200,
        headers: answerHeaders(request),
      });
    } catch (error) {
      return failure(error, request);
    }
  };
}

/**
 * The store names events by index ("/0/idempotency_key"); a request that
 * posted one object, not an array, gets paths into that object instead, as its
 * validation errors do.
 */
function asSingleEvent(error: unknown): unknown {
  if (!(error instanceof ZoeError) || !Array.isArray(error.details)) return error;
  const details = (error.details as { path?: unknown }[]).map((d) =>
    typeof d.path === "string" ? { ...d, path: d.path.replace(/^\/0(?=\/|$)/, "") } : d,
  );
  const message = error.message.replace(/^Cannot store event 0: /, "Cannot store the event: ");
  return new ZoeError(error.code, message, { details, cause: error, retryAfter: error.retryAfter });
}
