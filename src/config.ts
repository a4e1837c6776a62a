// Configuration is parsed once, at start, from an env-like record. A bad
// value stops the service with a message naming the variable and what it
// accepts. Two halves: the environment side (typed readers of one variable
// each, which variables a loader reads, warnings for names nobody reads or
// that look misspelt, every error of a loader instead of its first), then the
// settings and their shapes, composed from those readers; config-check.ts
// reports with both.
import { ConfigError } from "./domain/errors.ts";
import { CRITICAL_SUBTYPES } from "./domain/events.ts";
import { hostName } from "./lib/host-name.ts";
import type { LogFormatSetting, LogLevel } from "./lib/log.ts";
import { editDistance, nearest } from "./lib/edit-distance.ts";

export type Env = Record<string, string | undefined>;

/** A variable's value, trimmed; an empty one is unset (its default). */
export function readVar(env: Env, name: string): string | undefined {
  const v = env[name]?.trim();
  return v === "" ? undefined : v;
}

export function intVar(env: Env, name: string, fallback: number, min: number, max: number): number {
  const raw = readVar(env, name);
  if (raw === undefined) return fallback;
  if (!/^\d+$/.test(raw)) throw new ConfigError(name, `expected an integer from ${min} to ${max}, got "${raw}"`);
  const n = Number(raw);
  if (n < min || n > max) throw new ConfigError(name, `expected an integer from ${min} to ${max}, got ${n}`);
  return n;
}

export function numberVar(env: Env, name: string, fallback: number, min: number, max: number): number {
  const raw = readVar(env, name);
  if (raw === undefined) return fallback;
  const n = Number(raw);
  if (!/^\d+(\.\d+)?$/.test(raw) || n < min || n > max) {
    throw new ConfigError(name, `expected a number from ${min} to ${max}, got "${raw}"`);
  }
  return n;
}

export function enumVar<T extends string>(env: Env, name: string, fallback: T, choices: readonly T[]): T {
  const raw = readVar(env, name);
  if (raw === undefined) return fallback;
  const found = choices.find((c) => c.toLowerCase() === raw.toLowerCase());
  if (!found) throw new ConfigError(name, `expected one of ${choices.join(", ")}, got "${raw}"`);
  return found;
}

export function boolVar(env: Env, name: string, fallback: boolean): boolean {
  const raw = readVar(env, name)?.toLowerCase();
  if (raw === undefined) return fallback;
  if (["1", "true", "on", "yes"].includes(raw)) return true;
  if (["0", "false", "off", "no"].includes(raw)) return false;
  throw new ConfigError(name, `expected true or false, got "${raw}"`);
}

/** A `ZOE_*` variable that no setting reads: most likely a typo that leaves the intended setting at its default. */
export interface ConfigWarning {
  variable: string;
  message: string;
  /** The nearest known variable by edit distance. */
  suggestion: string | null;
}

/**
 * The names `load` reads from the environment, found by running it over an
 * empty environment that records every lookup. Every setting is read on that
 * all-defaults path, so the list cannot drift from the loaders.
 */
export function variablesRead(load: (env: Env) => unknown): string[] {
  const names = new Set<string>();
  const recorder = new Proxy({} as Env, {
    get(_target, property) {
      if (typeof property === "string") names.add(property);
      return undefined;
    },
  });
  load(recorder);
  return [...names];
}

/** `ZOE_*` names that belong to other parts of the project: not a typo when they turn up here. */
const READ_ELSEWHERE: [RegExp, string | null][] = [
  [/^ZOE_INGEST_/, "is read by the zoe-ingest Edge Function, not by this service: set it in the function's secrets"],
  // Test, fuzz, benchmark and local-stack tooling (docs/development.md).
  [/^ZOE_(FUZZ|PG|BENCH)_|^ZOE_CHROMIUM$|^ZOE_LOCAL_JWT_SECRET$/, null],
  // The zoe-local CLI's address of the service (docs/operations.md); an env file may hold it.
  [/^ZOE_URL$/, null],
];

/** One warning per `ZOE_*` variable in `env` that is not in `known`, naming the nearest known one. */
export function unknownVariables(env: Env, known: readonly string[]): ConfigWarning[] {
  const knownSet = new Set(known);
  const warnings: ConfigWarning[] = [];
  for (const variable of Object.keys(env).sort()) {
    if (!variable.startsWith("ZOE_") || knownSet.has(variable)) continue;
    const elsewhere = READ_ELSEWHERE.find(([pattern]) => pattern.test(variable));
    if (elsewhere) {
      if (elsewhere[1] !== null) warnings.push({ variable, message: `${variable} ${elsewhere[1]}`, suggestion: null });
      continue;
    }
    const suggestion = nearest(variable, known)?.name ?? null;
    const hint = suggestion ? `; did you mean ${suggestion}?` : "";
    warnings.push({ variable, message: `${variable} is not a zoe-local setting and is ignored${hint}`, suggestion });
  }
  return warnings;
}

/** Supabase variables of other tools (the CLI, the Edge Functions): not a typo of one of ours. */
const OTHER_SUPABASE = new Set([
  "SUPABASE_DB_URL",
  "SUPABASE_DB_PASSWORD",
  "SUPABASE_JWT_SECRET",
  "SUPABASE_SECRET_KEYS",
  "SUPABASE_PUBLISHABLE_KEYS",
  "SUPABASE_ACCESS_TOKEN",
  "SUPABASE_PROJECT_ID",
  "SUPABASE_PROJECT_REF",
]);
/** What other projects call the variables zoe-local reads under another name. */
const ALIASES: Record<string, string> = {
  SUPABASE_KEY: "SUPABASE_SERVICE_ROLE_KEY",
  SUPABASE_SERVICE_KEY: "SUPABASE_SERVICE_ROLE_KEY",
  SUPABASE_SECRET_KEY: "SUPABASE_SERVICE_ROLE_KEY",
  SUPABASE_SERVICE_ROLE: "SUPABASE_SERVICE_ROLE_KEY",
  SERVICE_ROLE_KEY: "SUPABASE_SERVICE_ROLE_KEY",
  SUPABASE_PROJECT_URL: "SUPABASE_URL",
  SUPABASE_API_URL: "SUPABASE_URL",
};

/** "SUPABSE", "SUPERBASE", "SUPBASE": a first word a typo away from SUPABASE. */
function looksLikeSupabase(name: string): boolean {
  const first = name.split("_")[0]!;
  return first.length >= 6 && editDistance(first, "SUPABASE") <= 2;
}

/**
 * Variables that look meant for zoe-local but are not read: lower- or
 * mixed-case spellings of its settings (`zoe_api_token`, `supabase_url`:
 * names are case-sensitive), and misspelt or differently named Supabase
 * variables (`SUPABSE_URL`, `SUPABASE_SERVICE_KEY`) while the one they stand
 * for is unset. Each names the variable to use.
 */
export function misnamedVariables(env: Env, known: readonly string[]): ConfigWarning[] {
  const knownSet = new Set(known);
  const isSet = (name: string) => readVar(env, name) !== undefined;
  const warnings: ConfigWarning[] = [];
  for (const variable of Object.keys(env).sort()) {
    if (knownSet.has(variable) || readVar(env, variable) === undefined) continue;
    const upper = variable.toUpperCase();
    if (upper !== variable) {
      if (!upper.startsWith("ZOE_") && !knownSet.has(upper) && !looksLikeSupabase(upper)) continue;
      const suggestion = knownSet.has(upper) ? upper : (nearest(upper, known)?.name ?? null);
      const hint = suggestion ? `; did you mean ${suggestion}?` : "";
      warnings.push({
        variable,
        message: `${variable} is ignored: zoe-local's settings are upper-case${hint}`,
        suggestion,
      });
      continue;
    }
    if (OTHER_SUPABASE.has(variable)) continue;
    let suggestion: string | null = ALIASES[variable] ?? null;
    if (suggestion === null && looksLikeSupabase(variable)) {
      const close = nearest(
        variable,
        known.filter((k) => k.startsWith("SUPABASE_")),
      );
      if (close && close.distance <= 3) suggestion = close.name;
    }
    if (suggestion === null || isSet(suggestion)) continue;
    warnings.push({
      variable,
      message: `${variable} is not a zoe-local setting and is ignored; did you mean ${suggestion}?`,
      suggestion,
    });
  }
  return warnings;
}

/**
 * Runs `load` and, instead of stopping at the first bad variable, reports
 * each: after an error it retries with that variable unset (its default),
 * until `load` succeeds or an error names a variable that is not set. The
 * value is null unless there was no error at all.
 */
export function collectConfigErrors<T>(env: Env, load: (env: Env) => T): { value: T | null; errors: ConfigError[] } {
  const current: Env = { ...env };
  const errors: ConfigError[] = [];
  for (;;) {
    try {
      const value = load(current);
      // With errors, that value holds defaults in place of the bad settings: not the configuration asked for.
      return { value: errors.length === 0 ? value : null, errors };
    } catch (error) {
      if (!(error instanceof ConfigError)) throw error;
      errors.push(error);
      if (readVar(current, error.variable) === undefined) return { value: null, errors };
      delete current[error.variable];
    }
  }
}

// The settings, read with the readers above.
const read = readVar;

export type SynchronousLevel = "NORMAL" | "FULL" | "EXTRA";

export interface Config {
  host: string;
  port: number;
  dbPath: string;
  apiToken: string | null;
  corsOrigins: string[];
  /** ZOE_ALLOWED_HOSTS: Host names served besides the loopback ones (lower case, no port); null when unset. */
  allowedHosts: string[] | null;
  synchronous: SynchronousLevel;
  retentionMs: number;
  stateKeep: number;
  maxRequestBytes: number;
  groupCommit: boolean;
  /** WAL checkpoint interval of the background checkpointer; 0 leaves checkpoints to SQLite's automatic one. */
  checkpointIntervalMs: number;
  logLevel: LogLevel;
  /** ZOE_LOG_FORMAT: json, pretty, or auto (JSON unless stdout is a terminal). */
  logFormat: LogFormatSetting;
  /** Bun's idleTimeout: an idle connection, or one trickling a body (slowloris), is closed after it. */
  idleTimeoutS: number;
  /** Sampling interval of the in-memory hour of history (GET /local/history, the dashboard's charts). */
  historyIntervalMs: number;
  sse: {
    heartbeatMs: number;
    stallMs: number;
    retryMs: number;
    maxBufferedBytes: number;
    /** Bytes all streams together may hold before the ones holding the most are cut off. */
    maxTotalBufferedBytes: number;
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

/** ZOE_LOG_FORMAT; also read on its own to report settings that stop the start in the run's format. */
export function logFormatVar(env: Env): LogFormatSetting {
  return enumVar(env, "ZOE_LOG_FORMAT", "auto", ["auto", "json", "pretty"] as const);
}

/**
 * Browser origins allowed by default: this service's own page and the dev
 * servers a dashboard is built with (Vite's `dev` on 5173, `preview` on
 * 4173), under both names of the loopback host a browser may be given.
 */
export const DEFAULT_CORS_ORIGINS = ["localhost", "127.0.0.1"].flatMap((host) =>
  [5173, 4173, 8765].map((port) => `http://${host}:${port}`),
);

export function loadConfig(env: Env): Config {
  const host = read(env, "HOST") ?? "127.0.0.1";
  const apiToken = read(env, "ZOE_API_TOKEN") ?? null;
  if (apiToken !== null && apiToken.length < 16) {
    throw new ConfigError("ZOE_API_TOKEN", "expected at least 16 characters (use a random secret)");
  }
  if (!isLoopback(host) && apiToken === null) {
    throw new ConfigError("HOST", `binding to non-loopback address ${host} requires ZOE_API_TOKEN to be set`);
  }
  const origins = (read(env, "ZOE_CORS_ORIGINS") ?? DEFAULT_CORS_ORIGINS.join(","))
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
    allowedHosts: loadAllowedHosts(env),
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
    logFormat: logFormatVar(env),
    idleTimeoutS: intVar(env, "ZOE_IDLE_TIMEOUT_S", 30, 1, 255),
    historyIntervalMs: intVar(env, "ZOE_HISTORY_INTERVAL_MS", 10_000, 100, 600_000),
    sse: {
      // Often enough that a page notices a hung link within seconds (src/client watches it).
      heartbeatMs: intVar(env, "ZOE_SSE_HEARTBEAT_MS", 2_000, 10, 3_600_000),
      stallMs: intVar(env, "ZOE_SSE_STALL_MS", 15_000, 100, 3_600_000),
      retryMs: intVar(env, "ZOE_SSE_RETRY_MS", 2_000, 0, 600_000),
      maxBufferedBytes: intVar(env, "ZOE_SSE_MAX_BUFFER_BYTES", 4 * 1_048_576, 1024, 1 << 30),
      maxTotalBufferedBytes: intVar(env, "ZOE_SSE_MAX_TOTAL_BUFFER_BYTES", 64 * 1_048_576, 1_048_576, 2 ** 40),
      coalesceMs: intVar(env, "ZOE_SSE_COALESCE_MS", 2, 0, 1000),
      maxClients: intVar(env, "ZOE_SSE_MAX_CLIENTS", 1000, 1, 1_000_000),
      maxClientsPerAddress: intVar(env, "ZOE_SSE_MAX_CLIENTS_PER_IP", 50, 1, 1_000_000),
    },
    flush: loadFlushConfig(env),
    limits: loadLimitsConfig(env),
  };
}

/** ZOE_ALLOWED_HOSTS: comma-separated names or addresses, no port (an IPv6 address with or without brackets). */
function loadAllowedHosts(env: Env): string[] | null {
  const raw = read(env, "ZOE_ALLOWED_HOSTS");
  if (raw === undefined) return null;
  const names: string[] = [];
  for (const entry of raw
    .split(",")
    .map((h) => h.trim())
    .filter(Boolean)) {
    const bracketed = /^[0-9a-f]*:[0-9a-f:.]*$/i.test(entry) ? `[${entry}]` : entry;
    const name = hostName(bracketed);
    if (name === null || name !== bracketed.toLowerCase().replace(/\.$/, "")) {
      throw new ConfigError(
        "ZOE_ALLOWED_HOSTS",
        `expected comma-separated host names or addresses without a port, like bot-box.local,192.168.1.20, got "${entry}"`,
      );
    }
    names.push(name);
  }
  return names;
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
