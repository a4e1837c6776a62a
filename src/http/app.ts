// The HTTP API. Routes validate with the shared schema themselves (not
// Elysia's body validation, which strips unknown fields and answers in its own
// shape), so every bad request gets the same `{error:{code,message,details}}`
// body and the same verdict the Edge Function gives. The OpenAPI document is
// generated from those very schemas.
import { cors } from "@elysiajs/cors";
import { openapi } from "@elysiajs/openapi";
import { Elysia } from "elysia";
import { assertAuthorized } from "./auth.ts";
import { readJsonBody } from "./body.ts";
import { NotFoundError, ValidationError, ZoeError } from "../domain/errors.ts";
import type { Hub } from "../stream/hub.ts";
import type { HealthSource } from "../ops/health.ts";
import type { Logger } from "../lib/log.ts";
import { apiReferences, routeDocs } from "./openapi.ts";
import { eventsQuery, modeOnlyQuery, modeQuery, streamHeartbeatEvents, streamPosition } from "./query.ts";
import type { EventInput, Mode } from "../domain/schema.ts";
import { createIngest } from "./ingest.ts";
import { openEventStream, SSE_HEADERS, type StreamCloseReason } from "../stream/sse.ts";
import { createSseLimiter, type SseLimits } from "../stream/sse-limiter.ts";
import { checkStateInput } from "../domain/state.ts";
import type { AppendResult, EventStore } from "../store/store.ts";
import { checkRetryInput, type QuarantineSource } from "../flush/quarantine.ts";


/**
 * Admission control and observation of requests: src/http/operations.ts plugs the
 * bounded store, the metrics, readiness and the 5xx log in here.
 */
export interface AppHooks {
  /** Throws a 503 ZoeError to refuse a batch; the returned function runs once the append settled. */
  admit?(events: EventInput[]): () => void;
  /** The append committed; `ms` since the ingest handler started. */
  ingested?(events: EventInput[], results: AppendResult[], ms: number): void;
  /** A request on any route ended in this error answer. */
  failed?(error: unknown, status: number, request: Request): void;
  streamClosed?(mode: Mode, reason: StreamCloseReason): void;
}

export interface AppOptions {
  store: EventStore;
  hub: Hub;
  health: HealthSource;
  logger: Logger;
  apiToken: string | null;
  corsOrigins: string[];
  maxRequestBytes: number;
  /** maxClients / maxClientsPerAddress: open-stream caps (none when absent). */
  sse: { heartbeatMs: number; stallMs?: number; retryMs: number; maxBufferedBytes: number; coalesceMs: number } & Partial<SseLimits>;
  /** Aborted at shutdown: open SSE streams end so the server can stop. */
  shutdown?: AbortSignal;
  /** Extra routes (dashboard, metrics) mounted by the caller. */
  plugins?: Elysia<any, any, any, any, any, any, any>[];
  /** Poison events set aside by the flusher (GET /local/quarantine, POST /local/quarantine/retry). */
  quarantine?: QuarantineSource;
  hooks?: AppHooks;
}

const PUBLIC_PATHS = /^\/(docs(\/.*)?)?$/;

function errorResponse(error: ZoeError): Response {
  const headers: Record<string, string> = { "content-type": "application/json" };
  if (error.retryAfter !== undefined) headers["retry-after"] = String(error.retryAfter);
  return new Response(JSON.stringify(error.toJSON()), { status: error.status, headers });
}

export function createApp(options: AppOptions) {
  const { store, hub, logger } = options;
  const allowedOrigins = new Set(options.corsOrigins);
  const streams = createSseLimiter({
    maxClients: options.sse.maxClients ?? Number.POSITIVE_INFINITY,
    maxClientsPerAddress: options.sse.maxClientsPerAddress ?? Number.POSITIVE_INFINITY,
    exemptLoopback: options.sse.exemptLoopback,
  });
  const json = (body: unknown, status = 200) =>
    new Response(JSON.stringify(body), { status, headers: { "content-type": "application/json" } });

  const errorAnswer = (error: unknown, code: unknown, request: Request): Response => {
    if (error instanceof ZoeError) return errorResponse(error);
    if (code === "NOT_FOUND") {
      return errorResponse(new NotFoundError(`No route for ${request.method} ${new URL(request.url).pathname}`));
    }
    if (code === "PARSE" || code === "VALIDATION") {
      return errorResponse(new ValidationError(`Cannot read request: ${(error as Error).message}`));
    }
    logger.error("unhandled error", { error, path: new URL(request.url).pathname });
    return json({ error: { code: "internal", message: "Internal error", details: null } }, 500);
  };

  let app = new Elysia()
    .use(
      cors({
        // Exact match only. Given a list, @elysiajs/cors tests `origin in {…}`,
        // which also reflects "constructor", "__proto__" and other Object.prototype names.
        origin: (request) => allowedOrigins.has(request.headers.get("origin") ?? ""),
        credentials: false,
        methods: ["GET", "POST", "OPTIONS"],
        allowedHeaders: ["Content-Type", "Authorization", "Last-Event-ID"],
        exposeHeaders: ["Retry-After"],
        maxAge: 600,
      }),
    )
    .use(
      openapi({
        path: "/docs",
        references: apiReferences,
        documentation: {
          info: {
            title: "zoe-local",
            version: "1",
            description:
              "Local-first event store for the Zoe trading bot. Writes need `Authorization: Bearer <token>` when ZOE_API_TOKEN is set; reads take the header or `?token=`.",
          },
        },
      }),
    )
    .onError(({ error, code, request }) => {
      const response = errorAnswer(error, code, request);
      options.hooks?.failed?.(error, response.status, request);
      return response;
    })
    .onRequest(({ request }) => {
      if (request.method === "OPTIONS") return;
      const url = new URL(request.url);
      if (PUBLIC_PATHS.test(url.pathname)) return;
      try {
        assertAuthorized(request, url, options.apiToken);
      } catch (error) {
        return errorResponse(error as ZoeError);
      }
    });

  for (const plugin of options.plugins ?? []) app = app.use(plugin);
  const ingest = createIngest({
    store,
    maxRequestBytes: options.maxRequestBytes,
    apiToken: options.apiToken,
    corsOrigins: options.corsOrigins,
    logger,
    hooks: options.hooks,
  });

  const built = app
    .post(
      "/local/events",
      ({ request }) => ingest(request),
      { parse: "none", detail: routeDocs["POST /local/events"] },
    )
    .get(
      "/local/events",
      ({ request }) => {
        const q = eventsQuery(new URL(request.url));
        return json(store.list(q.mode, { sinceSeq: q.sinceSeq, limit: q.limit }));
      },
      { detail: routeDocs["GET /local/events"] },
    )
    .post(
      "/local/state",
      async ({ request }) => {
        const body = await readJsonBody(request, options.maxRequestBytes, "state snapshot");
        const { mode, state } = checkStateInput(body);
        const snapshot = store.putState(mode, state);
        return json({ mode, ts: snapshot.ts, last_seq: store.lastSeq(mode) }, 201);
      },
      { parse: "none", detail: routeDocs["POST /local/state"] },
    )
    .get(
      "/local/state",
      ({ request }) => {
        const mode = modeOnlyQuery(new URL(request.url));
        const snapshot = store.latestState(mode);
        const state = snapshot?.state ?? {};
        return json({
          ...state,
          mode,
          cash: state.cash ?? null,
          holdings: state.holdings ?? null,
          positions: state.positions ?? null,
          state_ts: snapshot?.ts ?? null,
          last_seq: store.lastSeq(mode),
          health: options.health.health(mode),
        });
      },
      { detail: routeDocs["GET /local/state"] },
    )
    .get(
      "/local/quarantine",
      ({ request }) => {
        const q = eventsQuery(new URL(request.url));
        const source = options.quarantine;
        if (!source) throw new NotFoundError("No quarantine: this service has no flusher");
        return json({ mode: q.mode, count: source.count(q.mode), events: source.list(q.mode, { limit: q.limit, afterSeq: q.sinceSeq }) });
      },
      {
        detail: {
          summary: "List quarantined events",
          description:
            "Events the remote rejected for good (or that fail the shared schema), set aside so the flush queue keeps moving: " +
            "{mode, count, events:[{event, reason, errors, remote_status, attempts, quarantined_at}]}, by seq; since_seq pages.",
        },
      },
    )
    .post(
      "/local/quarantine/retry",
      async ({ request }) => {
        const source = options.quarantine;
        if (!source) throw new NotFoundError("No quarantine: this service has no flusher");
        const { mode, ids } = checkRetryInput(await readJsonBody(request, options.maxRequestBytes, "quarantine retry"));
        const released = source.retry(mode, ids);
        return json({ mode, released, quarantined: source.count(mode) });
      },
      {
        parse: "none",
        detail: {
          summary: "Retry quarantined events",
          description: "Body {mode, ids?}: puts these quarantined events (all of the mode without ids) back in the flush queue after a fix, and flushes at once.",
        },
      },
    )
    .get(
      "/local/stream",
      ({ request, server }) => {
        const url = new URL(request.url);
        const mode = modeQuery(url);
        const after = streamPosition(request, url);
        const release = streams.acquire(server?.requestIP(request)?.address ?? null);
        // Bun closes sockets idle for idleTimeout; a stream's liveness is the
        // heartbeat's business (which also cuts off stuck clients).
        server?.timeout(request, 0);
        const stream = openEventStream({
          store,
          hub,
          mode,
          after,
          heartbeatEvents: streamHeartbeatEvents(url),
          signal: request.signal,
          shutdown: options.shutdown,
          ...options.sse,
          onClose: (reason) => {
            options.hooks?.streamClosed?.(mode, reason);
            release();
            if (reason === "slow") logger.warn("sse client cut off: too far behind", { mode });
          },
        });
        return new Response(stream, { headers: SSE_HEADERS });
      },
      { detail: routeDocs["GET /local/stream"] },
    )
    // Elysia answers a HEAD by running the GET handler and reading the whole
    // body for Content-Length: on a stream that never ends it would buffer
    // every live event until shutdown. A HEAD gets the headers, no stream.
    .head("/local/stream", ({ request }) => {
      const url = new URL(request.url);
      modeQuery(url);
      streamPosition(request, url);
      return new Response(null, { headers: SSE_HEADERS });
    })
    .get(
      "/health",
      () => {
        if (!store.ping()) return json({ status: "unavailable", db: "unavailable", modes: null }, 503);
        const modes = { paper: options.health.health("paper"), live: options.health.health("live") };
        return json({ status: "ok", db: "ok", modes });
      },
      { detail: routeDocs["GET /health"] },
    );
  ingestOf.set(built, ingest);
  return built;
}

/**
 * Elysia looks for the path from index 11 of the URL on ("http://" plus at
 * least 4 characters), so a request whose Host is shorter, e.g. `Host: pi` on
 * port 80, would be routed by the wrong path. Such requests get a longer host.
 */
export function withRoutablePath(request: Request): Request {
  const url = request.url;
  if (url.indexOf("/", url.indexOf("//") + 2) >= 11) return request;
  const fixed = new URL(url);
  fixed.hostname = "localhost";
  return new Request(fixed, request);
}

export interface ServeOptions {
  hostname: string;
  port: number;
  /** Seconds a connection may sit idle, or trickle a body, before Bun closes it (default 30). */
  idleTimeoutS?: number;
}

/**
 * Listens with the settings the app relies on: the request-size limit is the
 * routes' own (a JSON 413 read from Content-Length or cut off while streaming),
 * so Bun's limit only stops absurd bodies; the app reads `server` for per-request
 * timeouts (SSE).
 */
export function serveApp(app: App, options: ServeOptions) {
  const server = Bun.serve({
    hostname: options.hostname,
    port: options.port,
    maxRequestBodySize: 128 * 1_048_576,
    idleTimeout: options.idleTimeoutS ?? 30,
    // The ingest hot path goes straight from Bun's router to its handler.
    routes: { "/local/events": { POST: ingestOf.get(app)! } },
    fetch: (request) => app.fetch(withRoutablePath(request)),
  });
  app.server = server as never;
  return server;
}

export type App = ReturnType<typeof createApp>;

/** Each app's precompiled POST /local/events handler, for serveApp. */
const ingestOf = new WeakMap<object, (request: Request) => Promise<Response>>();
