// The HTTP API, assembled from one plugin per route group. Routes validate
// with the shared schema themselves (not Elysia's body validation, which
// strips unknown fields and answers in its own shape), so every bad request
// gets the same `{error:{code,message,details}}` body and the same verdict the
// Edge Function gives. The OpenAPI document is generated from those very schemas.
import { Elysia } from "elysia";
import { authGuard } from "./auth.ts";
import { corsPolicy } from "./cors.ts";
import { errorAnswers } from "./errors.ts";
import type { AppHooks } from "./hooks.ts";
import { rememberOriginal } from "./client-address.ts";
import { createIngest } from "./ingest.ts";
import { methodTable, type RouteEntry } from "./methods.ts";
import { docsRoutes } from "./routes/docs.ts";
import { eventRoutes } from "./routes/events.ts";
import { healthRoutes } from "./routes/health.ts";
import { quarantineRoutes } from "./routes/quarantine.ts";
import { stateRoutes } from "./routes/state.ts";
import { streamRoutes, type StreamRoutesOptions } from "./routes/stream.ts";
import type { Hub } from "../stream/hub.ts";
import type { HealthSource } from "../ops/health.ts";
import type { Logger } from "../lib/log.ts";
import type { EventStore } from "../store/store.ts";
import type { QuarantineSource } from "../flush/quarantine.ts";

export interface AppOptions {
  store: EventStore;
  hub: Hub;
  health: HealthSource;
  logger: Logger;
  apiToken: string | null;
  corsOrigins: string[];
  maxRequestBytes: number;
  /** maxClients / maxClientsPerAddress: open-stream caps (none when absent). */
  sse: StreamRoutesOptions["sse"];
  /** Aborted at shutdown: open SSE streams end so the server can stop. */
  shutdown?: AbortSignal;
  /** Reads SSE replay pages off the event loop (src/stream/replay-reader.ts). */
  replayReader?: StreamRoutesOptions["replayReader"];
  /** Extra routes (dashboard, metrics) mounted by the caller. */
  // biome-ignore lint/suspicious/noExplicitAny: plugins of any route shape
  plugins?: Elysia<any, any, any, any, any, any, any>[];
  /** Poison events set aside by the flusher (GET /local/quarantine, POST /local/quarantine/retry). */
  quarantine?: QuarantineSource;
  /** Admission control and observation (src/http/operations.ts). */
  hooks?: AppHooks;
}

/**
 * Order matters: an Elysia hook covers the routes added after it. CORS and
 * the auth guard are onRequest hooks, which run app-wide whatever the order;
 * the error answers cover the caller's plugins and the route groups (the docs
 * come first and keep Elysia's own answers, as they always did).
 */
export function createApp(options: AppOptions) {
  // Read from the finished app's routes on the first miss, and again whenever
  // routes were added since (the 405 must know every route, mounted anywhere).
  let known: { count: number; allow: (path: string) => string | null } | null = null;
  const allowedMethods = (path: string): string | null => {
    const routes: readonly RouteEntry[] = built.routes;
    if (known === null || known.count !== routes.length) known = { count: routes.length, allow: methodTable(routes) };
    return known.allow(path);
  };
  let app = new Elysia()
    .use(corsPolicy(options.corsOrigins))
    .use(docsRoutes())
    .use(errorAnswers({ ...options, allowedMethods }))
    .use(authGuard(options.apiToken));

  for (const plugin of options.plugins ?? []) app = app.use(plugin);
  const ingest = createIngest(options);

  const built = app
    .use(eventRoutes({ store: options.store, ingest }))
    .use(stateRoutes(options))
    .use(quarantineRoutes(options))
    .use(streamRoutes(options))
    .use(healthRoutes(options));
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
    fetch: (request) => {
      const routed = withRoutablePath(request);
      // Bun knows the client's address only for its own Request object.
      rememberOriginal(routed, request);
      return app.fetch(routed);
    },
  });
  app.server = server as never;
  return server;
}

export type App = ReturnType<typeof createApp>;

/** Each app's precompiled POST /local/events handler, for serveApp. */
const ingestOf = new WeakMap<object, (request: Request) => Promise<Response>>();
