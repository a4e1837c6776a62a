// zoe-ingest's settings, read once from the function's environment: body and
// batch caps, the accepted secrets and keys (ingest.ts), and the writer's
// timeouts and pool size (writer.ts). A bad value fails the start, naming it.

export const DEFAULT_MAX_BODY_BYTES = 4 * 1024 * 1024;
export const DEFAULT_MAX_EVENTS = 500;

export interface IngestConfig {
  maxBodyBytes: number;
  maxEvents: number;
  /** Accepted in x-zoe-flush-secret instead of a service_role JWT. */
  flushSecret?: string;
  /** When set, JWT signatures are verified; otherwise the platform's verify_jwt is trusted. */
  jwtSecret?: string;
  /** Keys accepted verbatim as bearer tokens (SUPABASE_SERVICE_ROLE_KEY, SUPABASE_SECRET_KEYS). */
  serviceKeys: string[];
}

export type Env = (name: string) => string | undefined;

function positiveInt(env: Env, name: string, fallback: number): number {
  const raw = env(name);
  if (raw === undefined || raw === "") return fallback;
  const n = Number(raw);
  if (!Number.isSafeInteger(n) || n < 1)
    throw new Error(`Environment variable ${name} must be a positive integer, got ${JSON.stringify(raw)}`);
  return n;
}

function secretKeys(raw: string | undefined): string[] {
  if (!raw) return [];
  try {
    const parsed: unknown = JSON.parse(raw);
    if (parsed && typeof parsed === "object")
      return Object.values(parsed).filter((v): v is string => typeof v === "string" && v !== "");
  } catch {
    // not JSON: a single key
  }
  return [raw];
}

/** Timeouts and pool size for writer.ts, validated like the rest of the configuration. */
export function timeoutsFromEnv(env: Env): {
  lockTimeoutMs: number;
  statementTimeoutMs: number;
  orderWaitMs: number;
  maxConnections: number;
} {
  return {
    lockTimeoutMs: positiveInt(env, "ZOE_INGEST_LOCK_TIMEOUT_MS", 5000),
    statementTimeoutMs: positiveInt(env, "ZOE_INGEST_STATEMENT_TIMEOUT_MS", 20_000),
    // Below the lock timeout: a batch waiting for a predecessor that never
    // comes gives up (and frees its rows' keys) before a resend of the same
    // events, blocked on those keys, would hit the lock timeout.
    orderWaitMs: positiveInt(env, "ZOE_INGEST_ORDER_WAIT_MS", 3000),
    // Each batch waiting for its predecessor holds a connection: room for a
    // flusher window of 4 in both modes without a batch queueing behind them.
    maxConnections: positiveInt(env, "ZOE_INGEST_MAX_CONNECTIONS", 10),
  };
}

export function configFromEnv(env: Env): IngestConfig {
  const nonEmpty = (name: string) => env(name) || undefined;
  return {
    maxBodyBytes: positiveInt(env, "ZOE_INGEST_MAX_BODY_BYTES", DEFAULT_MAX_BODY_BYTES),
    maxEvents: positiveInt(env, "ZOE_INGEST_MAX_EVENTS", DEFAULT_MAX_EVENTS),
    flushSecret: nonEmpty("ZOE_FLUSH_SECRET"),
    jwtSecret: nonEmpty("SUPABASE_JWT_SECRET") ?? nonEmpty("JWT_SECRET"),
    serviceKeys: [
      ...secretKeys(nonEmpty("SUPABASE_SERVICE_ROLE_KEY")),
      ...secretKeys(nonEmpty("SUPABASE_SECRET_KEYS")),
    ],
  };
}
