// CORS for the browser clients (the dashboard on another origin, a web UI in
// development): exact origins from ZOE_CORS_ORIGINS, no credentials. Every
// answer says `Vary: Origin`: whether it carries Access-Control-Allow-Origin
// depends on the Origin header, so a cache must not serve one origin's answer
// to another. A browser tells its page nothing about a refused origin (the
// page sees a network error), so the service says it in its log.
import { cors } from "@elysiajs/cors";
import { Elysia } from "elysia";
import { type Clock, systemClock } from "../lib/clock.ts";
import type { Logger } from "../lib/log.ts";

/** Called for a request whose Origin is neither allowed nor the service's own. */
export type OriginRefused = (request: Request, origin: string) => void;

export interface RefusedOriginLogOptions {
  allowed: readonly string[];
  logger: Logger;
  clock?: Clock;
  /** One warning per origin per this long (default 10 minutes). */
  intervalMs?: number;
  /** Origins remembered at once; past that, new ones are counted, not logged (default 100). */
  maxOrigins?: number;
}

/**
 * Warns once per origin per interval that a browser page was refused, naming
 * the origin and ZOE_CORS_ORIGINS. Same-origin requests (the service's own
 * page, which browsers also send an Origin for) are not refusals. Bounded:
 * a page that invents origins cannot grow the memory or flood the log.
 */
export function refusedOriginLog(options: RefusedOriginLogOptions): OriginRefused {
  const clock = options.clock ?? systemClock;
  const intervalMs = options.intervalMs ?? 10 * 60_000;
  const maxOrigins = options.maxOrigins ?? 100;
  const allowed = [...options.allowed];
  const warnedAt = new Map<string, number>();
  let unlogged = 0;
  return (request, origin) => {
    const host = request.headers.get("host");
    if (host !== null && (origin === `http://${host}` || origin === `https://${host}`)) return;
    const now = clock.now();
    const last = warnedAt.get(origin);
    if (last !== undefined && now - last < intervalMs) return;
    if (last === undefined && warnedAt.size >= maxOrigins) {
      for (const [o, at] of warnedAt) if (now - at >= intervalMs) warnedAt.delete(o);
      if (warnedAt.size >= maxOrigins) {
        unlogged++;
        return;
      }
    }
    warnedAt.set(origin, now);
    const shown = origin.length > 200 ? `${origin.slice(0, 200)}…` : origin;
    options.logger.warn(
      `CORS: refused a browser request from ${shown}: it is not in ZOE_CORS_ORIGINS, so the page sees the local API as unreachable. ` +
        "Add the origin to ZOE_CORS_ORIGINS (comma-separated) and restart the service",
      {
        origin: shown,
        method: request.method,
        path: new URL(request.url).pathname,
        setting: "ZOE_CORS_ORIGINS",
        allowed,
        ...(unlogged > 0 ? { other_origins_not_logged: unlogged } : {}),
      },
    );
    unlogged = 0;
  };
}

const VARIES_ON_ORIGIN = /(^|,)\s*(origin|\*)\s*(,|$)/i;

/**
 * @elysiajs/cors puts `Vary: Origin` among the headers Elysia adds to an
 * answer, but a Response that brings its own Vary (the dashboard's
 * `accept-encoding`) keeps its own value: Origin is added to it here.
 */
function varyOnOrigin({ responseValue }: { responseValue: unknown }): void {
  if (!(responseValue instanceof Response)) return;
  const vary = responseValue.headers.get("vary");
  if (vary !== null && !VARIES_ON_ORIGIN.test(vary)) responseValue.headers.set("vary", `${vary}, Origin`);
}

/** What a browser may do: the one home of the policy, for the plugin and the ingest fast path alike. */
const POLICY = {
  methods: ["GET", "POST", "OPTIONS"],
  allowedHeaders: ["Content-Type", "Authorization", "Last-Event-ID"],
  exposeHeaders: ["Retry-After"],
  maxAge: 600,
} as const;

/**
 * The CORS headers of an answer (not a preflight) to `origin`, as the plugin
 * sets them: Access-Control-Allow-Origin only for an allowed origin.
 */
export function corsAnswerHeaders(origin: string | null): Record<string, string> {
  return {
    "access-control-allow-headers": POLICY.allowedHeaders.join(", "),
    "access-control-allow-methods": POLICY.methods.join(", "),
    "access-control-expose-headers": POLICY.exposeHeaders.join(", "),
    vary: "Origin",
    ...(origin === null ? {} : { "access-control-allow-origin": origin }),
  };
}

export function corsPolicy(origins: readonly string[], refused?: OriginRefused) {
  const allowed = new Set(origins);
  const policy = cors({
    // Exact match only. Given a list, @elysiajs/cors tests `origin in {…}`,
    // which also reflects "constructor", "__proto__" and other Object.prototype names.
    origin: (request) => {
      const origin = request.headers.get("origin");
      if (origin === null) return false;
      if (allowed.has(origin)) return true;
      refused?.(request, origin);
      return false;
    },
    credentials: false,
    methods: [...POLICY.methods],
    allowedHeaders: [...POLICY.allowedHeaders],
    exposeHeaders: [...POLICY.exposeHeaders],
    maxAge: POLICY.maxAge,
  });
  return new Elysia({ name: "zoe-cors" }).use(policy).onAfterHandle({ as: "global" }, varyOnOrigin);
}
