// The local stand-in for Supabase's API gateway (Bun.serve on a loopback port).
//
// Implements:
//   /rest/v1/<table>       the PostgREST subset of rest.ts. Like Supabase's gateway, an `apikey` header (or ?apikey=)
//                          holding a JWT signed with the stack's secret is required (401 otherwise); the role comes from
//                          `Authorization: Bearer <jwt>`, or from the apikey when there is no Authorization header;
//                          a JWT that fails verification → 401 PGRST301 (PostgREST's own code).
//   /functions/v1/<name>   proxied to that function's Deno process (method, headers, body, status passed through).
//                          With verify_jwt (the default; supabase/config.toml [functions.<name>] verify_jwt = false turns
//                          it off) the Authorization JWT must verify, any role, else 401 like the platform.
//                          502 when the function process is stopped.
//   OPTIONS *              CORS preflight; every answer carries Supabase's CORS headers
//                          (Access-Control-Allow-Origin *, the apikey/authorization/content-type/x-client-info/prefer/
//                          accept-profile/content-profile request headers, Content-Range exposed).
//   GET /health            {"ok":true}.
// Everything else: 404 {"message":"no Route matched with those values"} (Kong's wording).
import type { Server, SQL } from "bun";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { type JwtClaims, verifyJwt } from "../../supabase/functions/_shared/jwt.ts";
import { createRestHandler } from "./rest.ts";
import { REPO_ROOT } from "./edge-function.ts";

const CORS_HEADERS: Record<string, string> = {
  "access-control-allow-origin": "*",
  "access-control-allow-headers":
    "apikey, authorization, content-type, x-client-info, prefer, accept-profile, content-profile, range, x-zoe-flush-secret",
  "access-control-allow-methods": "GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS",
  "access-control-expose-headers": "content-range, content-profile, preference-applied, x-total-count",
  "access-control-max-age": "86400",
};

export interface GatewayOptions {
  sql: SQL;
  jwtSecret: string;
  /** Base URL of a function's Deno server: undefined for an unknown function (404), null while stopped (502). */
  functionUrl(name: string): string | null | undefined;
  port?: number;
  hostname?: string;
  /** Overrides config.toml's verify_jwt for every function. */
  verifyJwt?: boolean;
}

export interface Gateway {
  url: string;
  server: Server<undefined>;
  stop(): Promise<void>;
}

/** Reads `verify_jwt` for a function from supabase/config.toml (default true, as on the platform). */
export function functionVerifiesJwt(name: string, configPath = join(REPO_ROOT, "supabase", "config.toml")): boolean {
  let text = "";
  try {
    text = readFileSync(configPath, "utf8");
  } catch {
    return true;
  }
  const section =
    new RegExp(`^\\[functions\\.${name.replace(/[-]/g, "\\-")}\\]\\s*$([\\s\\S]*?)(?=^\\[|$(?![\\s\\S]))`, "m").exec(
      text,
    )?.[1] ?? "";
  return !/^\s*verify_jwt\s*=\s*false\b/m.test(section);
}

function withCors(res: Response): Response {
  for (const [k, v] of Object.entries(CORS_HEADERS)) res.headers.set(k, v);
  return res;
}

const jsonResponse = (status: number, body: unknown) =>
  new Response(JSON.stringify(body), { status, headers: { "content-type": "application/json; charset=utf-8" } });

function bearer(req: Request): string | null {
  const header = req.headers.get("authorization");
  if (header === null) return null;
  return /^Bearer\s+(.+)$/i.exec(header)?.[1]?.trim() ?? "";
}

/** PostgREST's checks: an apikey that verifies, then the bearer token (if any) decides the role. */
async function restRoute(
  req: Request,
  table: string,
  rest: ReturnType<typeof createRestHandler>,
  jwtSecret: string,
): Promise<Response> {
  const url = new URL(req.url);
  const apikey = req.headers.get("apikey") ?? url.searchParams.get("apikey");
  url.searchParams.delete("apikey");
  if (!apikey)
    return jsonResponse(401, {
      message: "No API key found in request",
      hint: "No `apikey` request header or url param was found.",
    });
  let apikeyClaims: JwtClaims;
  try {
    apikeyClaims = await verifyJwt(apikey, jwtSecret);
  } catch {
    return jsonResponse(401, {
      message: "Invalid API key",
      hint: "Double check your Supabase `anon` or `service_role` API key.",
    });
  }
  const token = bearer(req);
  let claims = apikeyClaims;
  if (token !== null) {
    try {
      claims = await verifyJwt(token, jwtSecret);
    } catch (error) {
      return jsonResponse(401, {
        code: "PGRST301",
        details: (error as Error).message,
        hint: null,
        message: "JWT could not be verified",
      });
    }
  }
  const role = typeof claims.role === "string" && claims.role ? claims.role : "anon";
  const forwarded = new Request(url, req);
  return await rest(forwarded, table, { role, claims });
}

/** The Functions relay: the JWT check the function's verify_jwt asks for, then the request forwarded to it. */
async function functionRoute(
  req: Request,
  name: string,
  rest: string,
  options: GatewayOptions,
  verifyJwtConfig: Map<string, boolean>,
): Promise<Response> {
  if (!verifyJwtConfig.has(name)) verifyJwtConfig.set(name, options.verifyJwt ?? functionVerifiesJwt(name));
  if (verifyJwtConfig.get(name)) {
    const token = bearer(req);
    if (!token) return jsonResponse(401, { code: 401, message: "Missing authorization header" });
    try {
      await verifyJwt(token, options.jwtSecret);
    } catch {
      return jsonResponse(401, { code: 401, message: "Invalid JWT" });
    }
  }
  const base = options.functionUrl(name);
  if (base === undefined) return jsonResponse(404, { code: "NOT_FOUND", message: "Requested function was not found" });
  if (base === null) return jsonResponse(502, { code: "BAD_GATEWAY", message: `Function ${name} is not running` });
  const target = new URL(`/${name}${rest}${new URL(req.url).search}`, base);
  const headers = new Headers(req.headers);
  headers.delete("host");
  headers.delete("content-length");
  try {
    const body = req.method === "GET" || req.method === "HEAD" ? undefined : await req.arrayBuffer();
    const res = await fetch(target, { method: req.method, headers, body, redirect: "manual" });
    const out = new Headers(res.headers);
    out.delete("content-encoding");
    out.delete("content-length");
    return new Response(await res.arrayBuffer(), { status: res.status, headers: out });
  } catch (error) {
    return jsonResponse(502, {
      code: "BAD_GATEWAY",
      message: `Function ${name} is not reachable: ${(error as Error).message}`,
    });
  }
}

export function startGateway(options: GatewayOptions): Gateway {
  const rest = createRestHandler({ sql: options.sql });
  // verify_jwt per function, read from its config.toml once.
  const verifyJwtConfig = new Map<string, boolean>();

  const server = Bun.serve({
    port: options.port ?? 0,
    hostname: options.hostname ?? "127.0.0.1",
    // Above the function's own 4 MiB limit, so the function (not the gateway) answers 413.
    maxRequestBodySize: 64 * 1024 * 1024,
    // Bun's default 10 s would cut a request waiting on a lock before the function's own timeouts answer.
    idleTimeout: 120,
    async fetch(req) {
      const { pathname } = new URL(req.url);
      if (req.method === "OPTIONS") return withCors(new Response(null, { status: 204 }));
      let res: Response;
      const restMatch = /^\/rest\/v1\/([^/]+)\/?$/.exec(pathname);
      const fnMatch = /^\/functions\/v1\/([A-Za-z][A-Za-z0-9_-]*)(\/.*)?$/.exec(pathname);
      if (restMatch) res = await restRoute(req, decodeURIComponent(restMatch[1]!), rest, options.jwtSecret);
      else if (fnMatch) res = await functionRoute(req, fnMatch[1]!, fnMatch[2] ?? "", options, verifyJwtConfig);
      else if (pathname === "/health") res = jsonResponse(200, { ok: true });
      else res = jsonResponse(404, { message: "no Route matched with those values" });
      return withCors(res);
    },
    error(error) {
      return withCors(jsonResponse(500, { message: `Gateway error: ${error.message}` }));
    },
  });

  return {
    url: `http://${server.hostname}:${server.port}`,
    server,
    stop: () => server.stop(true),
  };
}
