// CORS for the browser clients (the dashboard on another origin, a web UI in
// development): exact origins from ZOE_CORS_ORIGINS, no credentials. Every
// answer says `Vary: Origin`: whether it carries Access-Control-Allow-Origin
// depends on the Origin header, so a cache must not serve one origin's answer
// to another.
import { cors } from "@elysiajs/cors";
import { Elysia } from "elysia";

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

export function corsPolicy(origins: readonly string[]) {
  const allowed = new Set(origins);
  const policy = cors({
    // Exact match only. Given a list, @elysiajs/cors tests `origin in {…}`,
    // which also reflects "constructor", "__proto__" and other Object.prototype names.
    origin: (request) => allowed.has(request.headers.get("origin") ?? ""),
    credentials: false,
    methods: [...POLICY.methods],
    allowedHeaders: [...POLICY.allowedHeaders],
    exposeHeaders: [...POLICY.exposeHeaders],
    maxAge: POLICY.maxAge,
  });
  return new Elysia({ name: "zoe-cors" }).use(policy).onAfterHandle({ as: "global" }, varyOnOrigin);
}
