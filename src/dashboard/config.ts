// What the dashboard page needs to know, and where it comes from: env given
// to the service (served page) or to `bun run build:dashboard` (static
// files). Everything here ends up in a browser, so it holds public values
// only: the Supabase anon key, never the service-role key, and never the API
// token (the page takes that from its own URL or asks for it).
import { boolVar, type Env, intVar } from "../config.ts";
import { ConfigError } from "../domain/errors.ts";

export interface DashboardConfig {
  /** Base URL of the local API; "" = the origin that served the page. */
  localApiUrl: string;
  supabaseUrl: string | null;
  supabaseAnonKey: string | null;
  pollIntervalMs: number;
  realtime: boolean;
  maxEvents: number;
}

function read(env: Env, name: string): string | null {
  const v = env[name]?.trim();
  return v ? v : null;
}

/** The JWT payload's `role`, if `key` is a JWT. */
function jwtRole(key: string): string | null {
  const part = key.split(".")[1];
  if (!part) return null;
  try {
    const json = JSON.parse(Buffer.from(part.replace(/-/g, "+").replace(/_/g, "/"), "base64").toString("utf8")) as {
      role?: unknown;
    };
    return typeof json.role === "string" ? json.role : null;
  } catch {
    return null;
  }
}

/**
 * Reads SUPABASE_URL, SUPABASE_ANON_KEY, ZOE_DASHBOARD_LOCAL_API_URL,
 * ZOE_DASHBOARD_POLL_MS, ZOE_DASHBOARD_REALTIME, ZOE_DASHBOARD_MAX_EVENTS.
 * Refuses an "anon" key that is really the service-role key.
 */
export function loadDashboardConfig(
  env: Env,
  defaults: { localApiUrl: string } = { localApiUrl: "" },
): DashboardConfig {
  const supabaseUrl = read(env, "SUPABASE_URL");
  const anonKey = read(env, "SUPABASE_ANON_KEY");
  const serviceKey = read(env, "SUPABASE_SERVICE_ROLE_KEY");
  if (
    anonKey !== null &&
    (anonKey === serviceKey || jwtRole(anonKey) === "service_role" || anonKey.startsWith("sb_secret_"))
  ) {
    throw new ConfigError(
      "SUPABASE_ANON_KEY",
      "is a service-role (secret) key; the dashboard runs in browsers and needs the anon (publishable) key",
    );
  }
  const localApiUrl = (read(env, "ZOE_DASHBOARD_LOCAL_API_URL") ?? defaults.localApiUrl).replace(/\/+$/, "");
  if (localApiUrl !== "" && !/^https?:\/\/[^/]+/.test(localApiUrl)) {
    throw new ConfigError(
      "ZOE_DASHBOARD_LOCAL_API_URL",
      `expected an http(s) URL like http://192.168.1.20:8765, got "${localApiUrl}"`,
    );
  }
  return {
    localApiUrl,
    supabaseUrl: anonKey ? supabaseUrl : null,
    supabaseAnonKey: supabaseUrl ? anonKey : null,
    pollIntervalMs: intVar(env, "ZOE_DASHBOARD_POLL_MS", 30_000, 250, 3_600_000),
    realtime: boolVar(env, "ZOE_DASHBOARD_REALTIME", false),
    maxEvents: intVar(env, "ZOE_DASHBOARD_MAX_EVENTS", 200, 10, 5_000),
  };
}
