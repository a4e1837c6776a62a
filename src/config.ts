// Configuration is parsed once, at start, from an env-like record. A bad
// value stops the service with a message naming the variable and what it accepts.
import { ConfigError } from "./errors.ts";
import type { LogLevel } from "./log.ts";

export type SynchronousLevel = "NORMAL" | "FULL" | "EXTRA";

export interface Config {
  host: string;
  port: number;
  dbPath: string;
  apiToken: string | null;
  corsOrigins: string[];
  synchronous: SynchronousLevel;
  retentionMs: number;
  stateKeep: number;
  maxRequestBytes: number;
  groupCommit: boolean;
  logLevel: LogLevel;
  sse: { heartbeatMs: number; retryMs: number; maxBufferedBytes: number; coalesceMs: number };
}

export type Env = Record<string, string | undefined>;

const LOOPBACK = new Set(["127.0.0.1", "::1", "localhost", "[::1]"]);

export function isLoopback(host: string): boolean {
  return LOOPBACK.has(host) || /^127\.\d+\.\d+\.\d+$/.test(host);
}

function read(env: Env, name: string): string | undefined {
  const v = env[name]?.trim();
  return v === "" ? undefined : v;
}

export function intVar(env: Env, name: string, fallback: number, min: number, max: number): number {
  const raw = read(env, name);
  if (raw === undefined) return fallback;
  if (!/^\d+$/.test(raw)) throw new ConfigError(name, `expected an integer from ${min} to ${max}, got "${raw}"`);
  const n = Number(raw);
  if (n < min || n > max) throw new ConfigError(name, `expected an integer from ${min} to ${max}, got ${n}`);
  return n;
}

export function numberVar(env: Env, name: string, fallback: number, min: number, max: number): number {
  const raw = read(env, name);
  if (raw === undefined) return fallback;
  const n = Number(raw);
  if (!/^\d+(\.\d+)?$/.test(raw) || n < min || n > max) {
    throw new ConfigError(name, `expected a number from ${min} to ${max}, got "${raw}"`);
  }
  return n;
}

export function enumVar<T extends string>(env: Env, name: string, fallback: T, choices: readonly T[]): T {
  const raw = read(env, name);
  if (raw === undefined) return fallback;
  const found = choices.find((c) => c.toLowerCase() === raw.toLowerCase());
  if (!found) throw new ConfigError(name, `expected one of ${choices.join(", ")}, got "${raw}"`);
  return found;
}

export function boolVar(env: Env, name: string, fallback: boolean): boolean {
  const raw = read(env, name)?.toLowerCase();
  if (raw === undefined) return fallback;
  if (["1", "true", "on", "yes"].includes(raw)) return true;
  if (["0", "false", "off", "no"].includes(raw)) return false;
  throw new ConfigError(name, `expected true or false, got "${raw}"`);
}

export function loadConfig(env: Env): Config {
  const host = read(env, "HOST") ?? "127.0.0.1";
  const apiToken = read(env, "ZOE_API_TOKEN") ?? null;
  if (apiToken !== null && apiToken.length < 16) {
    throw new ConfigError("ZOE_API_TOKEN", "expected at least 16 characters (use a random secret)");
  }
  if (!isLoopback(host) && apiToken === null) {
    throw new ConfigError("HOST", `binding to non-loopback address ${host} requires ZOE_API_TOKEN to be set`);
  }
  const origins = (read(env, "ZOE_CORS_ORIGINS") ?? "http://localhost:5173,http://localhost:8765")
    .split(",")
    .map((o) => o.trim())
    .filter(Boolean);
  for (const o of origins) {
    if (o === "*") throw new ConfigError("ZOE_CORS_ORIGINS", "a wildcard is not accepted; list each origin");
    let url: URL;
    try {
      url = new URL(o);
    } catch {
      throw new ConfigError("ZOE_CORS_ORIGINS", `expected comma-separated origins like http://host:port, got "${o}"`);
    }
    if (url.origin !== o.replace(/\/$/, "")) {
      throw new ConfigError("ZOE_CORS_ORIGINS", `expected an origin without path, got "${o}"`);
    }
  }
  return {
    host,
    port: intVar(env, "PORT", 8765, 0, 65535),
    dbPath: read(env, "ZOE_DB_PATH") ?? "./data/zoe-local.db",
    apiToken,
    corsOrigins: origins.map((o) => o.replace(/\/$/, "")),
    synchronous: enumVar(env, "ZOE_SYNCHRONOUS", "NORMAL", ["NORMAL", "FULL", "EXTRA"] as const),
    retentionMs: numberVar(env, "ZOE_RETENTION_DAYS", 7, 0, 3650) * 86_400_000,
    stateKeep: intVar(env, "ZOE_STATE_KEEP", 100, 1, 1_000_000),
    maxRequestBytes: intVar(env, "ZOE_MAX_REQUEST_BYTES", 1_048_576, 1024, 16 * 1_048_576),
    groupCommit: boolVar(env, "ZOE_GROUP_COMMIT", true),
    logLevel: enumVar(env, "ZOE_LOG_LEVEL", "info", ["debug", "info", "warn", "error"] as const),
    sse: {
      heartbeatMs: intVar(env, "ZOE_SSE_HEARTBEAT_MS", 15_000, 10, 3_600_000),
      retryMs: intVar(env, "ZOE_SSE_RETRY_MS", 2_000, 0, 600_000),
      maxBufferedBytes: intVar(env, "ZOE_SSE_MAX_BUFFER_BYTES", 4 * 1_048_576, 1024, 1 << 30),
      coalesceMs: intVar(env, "ZOE_SSE_COALESCE_MS", 2, 0, 1000),
    },
  };
}
