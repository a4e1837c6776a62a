// The HTTP API, assembled from one plugin per route group. Routes validate
// with the shared schema themselves (not Elysia's body validation, which
// strips unknown fields and answers in its own shape), so every bad request
// gets the same `{error:{code,message,details}}` body and the same verdict the
// Edge Function gives. The OpenAPI document is generated from those very schemas.
import { Elysia } from "elysia";
import { authGuard } from "./auth.ts";
import { corsPolicy, refusedOriginLog } from "./cors.ts";
import { errorAnswers } from "./errors.ts";
import { hostCheck } from "./host.ts";
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
  /** ZOE_ALLOWED_HOSTS: Host names served besides the loopback ones (src/http/host.ts); null or absent when unset. */
  allowedHosts?: readonly string[] | null;
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
  const originRefused = refusedOriginLog({ allowed: options.corsOrigins, logger: options.logger });
  let app = new Elysia()
    .use(corsPolicy(options.corsOrigins, originRefused))
    .use(docsRoutes())
    .use(errorAnswers({ ...options, allowedMethods }))
    .use(authGuard(options.apiToken));

  for (const plugin of options.plugins ?? []) app = app.use(plugin);
  const ingest = createIngest({ ...options, originRefused });

  const built = app
    .use(eventRoutes({ store: options.store, ingest }))
    .use(stateRoutes(options))
    .use(quarantineRoutes(options))
    .use(streamRoutes(options))
    .use(healthRoutes(options));
  wiringOf.set(built, {
    ingest,
    checkHost: hostCheck({ apiToken: options.apiToken, allowedHosts: options.allowedHosts ?? null }),
    logger: options.logger,
    hooks: options.hooks,
  });
  return built;
}

/**
 * The request as the router needs it. Elysia looks for the path from index 11
 * of the URL on ("http://" plus at least 4 characters), so a short Host, e.g.
 * `Host: pi` on port 80, would be routed by the wrong path; without a Host
 * (HTTP/1.0) Bun's URL is the bare path, which new URL() refuses; and a
 * fragment (`/docs#/x`, never sent by a browser) would be part of the path
 * Elysia matches but not of the one new URL() gives the auth check. Such
 * requests get the URL `http://localhost<path>`, without the fragment.
 */
export function withRoutablePath(request: Request): Request {
  const url = request.url;
  const scheme = url.indexOf("//");
  const pathAt = scheme < 0 ? 0 : url.indexOf("/", scheme + 2);
  if (scheme >= 0 && pathAt >= 11 && !url.includes("#", pathAt)) return request;
  let path = pathAt < 0 ? "/" : url.slice(pathAt);
  const fragment = path.indexOf("#");
  if (fragment >= 0) path = path.slice(0, fragment);
  return new Request(`http://localhost${path}`, request);
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
  const { ingest, checkHost, logger, hooks } = wiringOf.get(app)!;
  // What nothing else answered: a JSON 500, logged (secrets masked) and
  // counted, never Bun's error page (its development page shows the source,
  // the working directory and the full URL, ?token= included).
  const internal = (error: unknown, request: Request | null): Response => {
    logger.error("unhandled error", { error });
    hooks?.failed?.(error, 500, request);
    return new Response(INTERNAL_ERROR, {
      status: 500,
      headers: { "content-type": "application/json", vary: "Origin" },
    });
  };
  const ingestRoute = (request: Request) =>
    checkHost(request) ?? ingest(request.url.startsWith("http") ? request : withRoutablePath(request));
  const server = Bun.serve({
    hostname: options.hostname,
    port: options.port,
    development: false,
    maxRequestBodySize: 128 * 1_048_576,
    idleTimeout: options.idleTimeoutS ?? 30,
    // The ingest hot path goes straight from Bun's router to its handler.
    routes: { "/local/events": { POST: ingestRoute } },
    fetch: async (request) => {
      try {
        const refused = checkHost(request);
        if (refused) return refused;
        const routed = withRoutablePath(request);
        // Bun knows the client's address only for its own Request object.
        rememberOriginal(routed, request);
        return await app.fetch(routed);
      } catch (error) {
        return internal(error, request);
      }
    },
    error: (error) => internal(error, null),
  });
  app.server = server as never;
  return server;
}

export type App = ReturnType<typeof createApp>;

const INTERNAL_ERROR = '{"error":{"code":"internal","message":"Internal error","details":null}}';

/** What serveApp needs of each app besides its routes: the precompiled POST /local/events handler, the Host check, the failure path. */
const wiringOf = new WeakMap<
  object,
  {
    ingest: (request: Request) => Promise<Response>;
    checkHost: (request: Request) => Response | null;
    logger: Logger;
    hooks: AppHooks | undefined;
  }
>();
