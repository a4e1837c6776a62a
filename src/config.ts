// Configuration is parsed once, at start, from an env-like record. A bad
// value stops the service with a message naming the variable and what it accepts.
// The readers of single variables and the checks over the environment are
// config-env.ts; this module holds the settings and their shapes.
import { ConfigError } from "./domain/errors.ts";
import { CRITICAL_SUBTYPES } from "./domain/events.ts";
import type { LogLevel } from "./lib/log.ts";
import { boolVar, enumVar, type Env, intVar, numberVar, readVar as read } from "./config-env.ts";

// The readers and the variable checks live in config-env.ts; config.ts still offers them, as before.
export {
  boolVar,
  collectConfigErrors,
  type ConfigWarning,
  type Env,
  enumVar,
  intVar,
  numberVar,
  unknownVariables,
  variablesRead,
} from "./config-env.ts";

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
  /** WAL checkpoint interval of the background checkpointer; 0 leaves checkpoints to SQLite's automatic one. */
  checkpointIntervalMs: number;
  logLevel: LogLevel;
  /** Bun's idleTimeout: an idle connection, or one trickling a body (slowloris), is closed after it. */
  idleTimeoutS: number;
  /** Sampling interval of the in-memory hour of history (GET /local/history, the dashboard's charts). */
  historyIntervalMs: number;
  sse: {
    heartbeatMs: number;
    stallMs: number;
    retryMs: number;
    maxBufferedBytes: number;
    coalesceMs: number;
    maxClients: number;
    maxClientsPerAddress: number;
  };
  flush: FlushConfig;
  limits: LimitsConfig;
}

export interface LimitsConfig {
  /** Hard cap on unflushed events (all modes); 0: no cap. */
  maxBacklogEvents: number;
  /** Hard cap on unflushed bytes (see EVENT_BYTES_SQL); 0: no cap. */
  maxBacklogBytes: number;
  /** Free bytes left on the database's filesystem below which even critical events are refused; 0: no floor. */
  minFreeDiskBytes: number;
  /** Room under maxBacklogEvents only critical events may use. */
  criticalReserveEvents: number;
  /** Room under maxBacklogBytes, and above minFreeDiskBytes, only critical events may use. */
  criticalReserveBytes: number;
}

export interface FlushSettings {
  activeIntervalMs: number;
  offHoursIntervalMs: number;
  batchSize: number;
  /**
   * Batches of a mode in flight at once when the sink commits in seq order
   * (the Edge Function); 1 sends one at a time.
   */
  window: number;
  criticalImmediate: boolean;
  criticalSubtypes: readonly string[];
  /** false: the active interval around the clock. */
  marketHours: boolean;
  backoffMinMs: number;
  backoffMaxMs: number;
  /** A worker with a backlog and no activity for this long is restarted. */
  stallMs: number;
  /** Bound on SIGTERM: finish the flush in flight plus one last flush. */
  shutdownMs: number;
}

const LOOPBACK = new Set(["127.0.0.1", "::1", "localhost", "[::1]"]);

export function isLoopback(host: string): boolean {
  return LOOPBACK.has(host) || /^127\.\d+\.\d+\.\d+$/.test(host);
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
    // FULL by default: an acknowledged event must survive a power cut, not only a crash.
    synchronous: enumVar(env, "ZOE_SYNCHRONOUS", "FULL", ["NORMAL", "FULL", "EXTRA"] as const),
    // At least a day: the retention period is also the idempotency window. A bot
    // retry after its event was pruned would be stored again under a new seq.
    retentionMs: numberVar(env, "ZOE_RETENTION_DAYS", 7, 1, 3650) * 86_400_000,
    stateKeep: intVar(env, "ZOE_STATE_KEEP", 100, 1, 1_000_000),
    maxRequestBytes: intVar(env, "ZOE_MAX_REQUEST_BYTES", 1_048_576, 1024, 16 * 1_048_576),
    groupCommit: boolVar(env, "ZOE_GROUP_COMMIT", true),
    checkpointIntervalMs: intVar(env, "ZOE_CHECKPOINT_INTERVAL_MS", 1000, 0, 60_000),
    logLevel: enumVar(env, "ZOE_LOG_LEVEL", "info", ["debug", "info", "warn", "error"] as const),
    idleTimeoutS: intVar(env, "ZOE_IDLE_TIMEOUT_S", 30, 1, 255),
    historyIntervalMs: intVar(env, "ZOE_HISTORY_INTERVAL_MS", 10_000, 100, 600_000),
    sse: {
      // Often enough that a page notices a hung link within seconds (src/client watches it).
      heartbeatMs: intVar(env, "ZOE_SSE_HEARTBEAT_MS", 2_000, 10, 3_600_000),
      stallMs: intVar(env, "ZOE_SSE_STALL_MS", 15_000, 100, 3_600_000),
      retryMs: intVar(env, "ZOE_SSE_RETRY_MS", 2_000, 0, 600_000),
      maxBufferedBytes: intVar(env, "ZOE_SSE_MAX_BUFFER_BYTES", 4 * 1_048_576, 1024, 1 << 30),
      coalesceMs: intVar(env, "ZOE_SSE_COALESCE_MS", 2, 0, 1000),
      maxClients: intVar(env, "ZOE_SSE_MAX_CLIENTS", 1000, 1, 1_000_000),
      maxClientsPerAddress: intVar(env, "ZOE_SSE_MAX_CLIENTS_PER_IP", 50, 1, 1_000_000),
    },
    flush: loadFlushConfig(env),
    limits: loadLimitsConfig(env),
  };
}

/** A secret as it may be printed: that it is set, and its length, never a character of it. */
export const maskSecret = (secret: string | null | undefined) => (secret ? `<set, ${secret.length} characters>` : null);

/** The effective configuration with every secret masked, for `--check-config` and similar output. */
export function maskedConfig(config: Config): Config {
  const { flush } = config;
  return {
    ...config,
    apiToken: maskSecret(config.apiToken),
    flush: {
      ...flush,
      secret: maskSecret(flush.secret),
      remote: flush.remote && { ...flush.remote, serviceKey: maskSecret(flush.remote.serviceKey)! },
    },
  };
}

/** The configured values that must never reach a log line: the logger scrubs them wherever they appear. */
export function configSecrets(config: Config): string[] {
  return [config.apiToken, config.flush.remote?.serviceKey, config.flush.secret].filter((s): s is string => Boolean(s));
}

const MiB = 1_048_576;

/** The bounded store (src/store/limits.ts): caps are hard limits, the reserves are kept for critical events; 0 turns a cap off. */
export function loadLimitsConfig(env: Env): LimitsConfig {
  const max = Number.MAX_SAFE_INTEGER;
  const maxBacklogEvents = intVar(env, "ZOE_MAX_BACKLOG_EVENTS", 5_000_000, 0, max);
  const maxBacklogBytes = intVar(env, "ZOE_MAX_BACKLOG_BYTES", 2048 * MiB, 0, max);
  const minFreeDiskBytes = intVar(env, "ZOE_MIN_FREE_DISK_BYTES", 256 * MiB, 0, max);
  const criticalReserveEvents = intVar(
    env,
    "ZOE_CRITICAL_RESERVE_EVENTS",
    Math.min(10_000, Math.floor(maxBacklogEvents / 10)),
    0,
    max,
  );
  const criticalReserveBytes = intVar(
    env,
    "ZOE_CRITICAL_RESERVE_BYTES",
    maxBacklogBytes > 0 ? Math.min(64 * MiB, Math.floor(maxBacklogBytes / 10)) : 64 * MiB,
    0,
    max,
  );
  if (maxBacklogEvents > 0 && criticalReserveEvents >= maxBacklogEvents) {
    throw new ConfigError(
      "ZOE_CRITICAL_RESERVE_EVENTS",
      `must be less than ZOE_MAX_BACKLOG_EVENTS (${maxBacklogEvents})`,
    );
  }
  if (maxBacklogBytes > 0 && criticalReserveBytes >= maxBacklogBytes) {
    throw new ConfigError("ZOE_CRITICAL_RESERVE_BYTES", `must be less than ZOE_MAX_BACKLOG_BYTES (${maxBacklogBytes})`);
  }
  return { maxBacklogEvents, maxBacklogBytes, minFreeDiskBytes, criticalReserveEvents, criticalReserveBytes };
}

export interface FlushConfig extends FlushSettings {
  /** null: no SUPABASE_URL, the flusher stays idle and events stay local. */
  remote: { url: string; serviceKey: string } | null;
  sink: "edge" | "direct";
  functionName: string;
  secret: string | null;
  timeoutMs: number;
}

export function loadFlushConfig(env: Env): FlushConfig {
  const url = read(env, "SUPABASE_URL");
  const serviceKey = read(env, "SUPABASE_SERVICE_ROLE_KEY");
  let remote: FlushConfig["remote"] = null;
  if (url !== undefined) {
    let parsed: URL;
    try {
      parsed = new URL(url);
    } catch {
      throw new ConfigError("SUPABASE_URL", `expected a URL like https://<project>.supabase.co, got "${url}"`);
    }
    // The service-role key travels in every request: only loopback may skip TLS.
    if (parsed.protocol !== "https:" && !(parsed.protocol === "http:" && isLoopback(parsed.hostname))) {
      throw new ConfigError(
        "SUPABASE_URL",
        `expected https:// (http:// only for a loopback host), got "${parsed.protocol}//${parsed.host}"`,
      );
    }
    if (serviceKey === undefined)
      throw new ConfigError("SUPABASE_SERVICE_ROLE_KEY", "required when SUPABASE_URL is set");
    remote = { url: parsed.origin + parsed.pathname.replace(/\/+$/, ""), serviceKey };
  }
  const offHoursIntervalMs = intVar(env, "ZOE_FLUSH_OFFHOURS_MS", 120_000, 10, 86_400_000);
  const backoffMinMs = intVar(env, "ZOE_FLUSH_BACKOFF_MIN_MS", 1_000, 1, 3_600_000);
  const backoffMaxMs = intVar(env, "ZOE_FLUSH_BACKOFF_MAX_MS", 60_000, 1, 86_400_000);
  if (backoffMaxMs < backoffMinMs)
    throw new ConfigError("ZOE_FLUSH_BACKOFF_MAX_MS", `must be at least ZOE_FLUSH_BACKOFF_MIN_MS (${backoffMinMs})`);
  const timeoutMs = intVar(env, "ZOE_FLUSH_TIMEOUT_MS", 10_000, 10, 600_000);
  // The watchdog must not mistake a normal off-hours wait or a capped backoff for a stall.
  const stallFloor = Math.max(offHoursIntervalMs, backoffMaxMs + timeoutMs);
  const stallMs = intVar(env, "ZOE_FLUSH_STALL_MS", Math.max(600_000, 2 * stallFloor), 1, 86_400_000 * 7);
  if (stallMs <= stallFloor)
    throw new ConfigError(
      "ZOE_FLUSH_STALL_MS",
      `must exceed ${stallFloor} (the off-hours interval and the backoff cap plus the timeout)`,
    );
  const subtypes = read(env, "ZOE_FLUSH_CRITICAL_SUBTYPES");
  return {
    remote,
    sink: enumVar(env, "ZOE_FLUSH_SINK", "edge", ["edge", "direct"] as const),
    functionName: read(env, "ZOE_FLUSH_FUNCTION") ?? "zoe-ingest",
    secret: read(env, "ZOE_FLUSH_SECRET") ?? null,
    timeoutMs,
    activeIntervalMs: intVar(env, "ZOE_FLUSH_ACTIVE_MS", 15_000, 10, 86_400_000),
    offHoursIntervalMs,
    batchSize: intVar(env, "ZOE_FLUSH_BATCH_SIZE", 500, 1, 1000),
    window: intVar(env, "ZOE_FLUSH_WINDOW", 3, 1, 8),
    criticalImmediate: boolVar(env, "ZOE_FLUSH_CRITICAL_IMMEDIATE", true),
    criticalSubtypes:
      subtypes === undefined
        ? [...CRITICAL_SUBTYPES]
        : subtypes
            .split(",")
            .map((s) => s.trim())
            .filter(Boolean),
    marketHours: boolVar(env, "ZOE_FLUSH_MARKET_HOURS", true),
    backoffMinMs,
    backoffMaxMs,
    stallMs,
    shutdownMs: intVar(env, "ZOE_FLUSH_SHUTDOWN_MS", 10_000, 0, 600_000),
  };
}
