// Composition root: parse config once, open the store, wire the hub, build
// the app, listen, and shut down cleanly on SIGTERM/SIGINT.
import { accessSync, constants, existsSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { createApp, serveApp } from "./http/app.ts";
import { systemClock } from "./lib/clock.ts";
import {
  collectConfigErrors,
  type Config,
  type ConfigWarning,
  configSecrets,
  type Env,
  loadConfig,
  loadFlushConfig,
  loadLimitsConfig,
  maskedConfig,
  maskSecret,
  unknownVariables,
  variablesRead,
} from "./config.ts";
import { type ConfigError, StartupError } from "./domain/errors.ts";
import { createHealth } from "./ops/health.ts";
import { readBuildInfo } from "./ops/build-info.ts";
import { createHistory } from "./ops/history.ts";
import { operatorRoutes } from "./http/operator.ts";
import { createFlusher, type Flusher } from "./flush/flusher.ts";
import { createHub } from "./stream/hub.ts";
import { createLogger } from "./lib/log.ts";
import { Quarantine } from "./flush/quarantine.ts";
import type { Sink } from "./flush/sink.ts";
import { createEdgeFunctionSink } from "./flush/sinks/edge-function.ts";
import { inlineReader, type ReaderWorker, startReaderWorker } from "./flush/reader.ts";
import { runRetention } from "./store/retention.ts";
import { openStore } from "./store/store.ts";
import { systemScheduler } from "./lib/scheduler.ts";
import { createOperations } from "./http/operations.ts";
import { buildDashboardAssets } from "./dashboard/build.ts";
import { type DashboardConfig, loadDashboardConfig } from "./dashboard/config.ts";
import { dashboardPlugin } from "./dashboard/plugin.ts";

export interface ConfigCheck {
  ok: boolean;
  /** Every bad setting, each naming its variable (the service refuses to start on any). */
  errors: { variable: string; message: string }[];
  /** Misspelt or misplaced variables and settings that will not work as given; the service starts anyway. */
  warnings: ConfigWarning[];
  /** The effective settings (null unless ok). Holds secrets: print it through maskedConfig(). */
  config: Config | null;
  dashboard: DashboardConfig | null;
}

/** Every variable the service reads (settings of the service and of its dashboard). */
export function knownVariables(): string[] {
  return [...new Set([...variablesRead(loadConfig), ...variablesRead(loadDashboardConfig)])].sort();
}

/**
 * Validates the settings in `env` without starting anything: all errors, not
 * just the first, and warnings for unknown `ZOE_*` variables. What the service
 * runs at start, and what `--check-config` prints.
 */
export function checkConfig(env: Env): ConfigCheck {
  const service = collectConfigErrors(env, loadConfig);
  const dashboard = collectConfigErrors(env, loadDashboardConfig);
  // loadConfig stops at an error it cannot step past; the sections it
  // composes are checked on their own too so their errors are all found.
  const sections = [collectConfigErrors(env, loadFlushConfig), collectConfigErrors(env, loadLimitsConfig)];
  const seen = new Set<string>();
  const errors: ConfigCheck["errors"] = [];
  for (const e of [service, ...sections, dashboard].flatMap((r) => r.errors as ConfigError[])) {
    if (seen.has(e.message)) continue;
    seen.add(e.message);
    errors.push({ variable: e.variable, message: e.message });
  }
  const warnings = unknownVariables(env, knownVariables());
  if (service.value) warnings.push(...databaseFolderWarnings(service.value.dbPath));
  const ok = errors.length === 0;
  return { ok, errors, warnings, config: ok ? service.value : null, dashboard: ok ? dashboard.value : null };
}

/** The service creates the database's folder; warn now if this user could not. */
function databaseFolderWarnings(dbPath: string): ConfigWarning[] {
  const target = existsSync(dbPath) ? resolve(dbPath) : nearestExisting(dirname(resolve(dbPath)));
  try {
    accessSync(target, constants.W_OK);
    return [];
  } catch {
    const message = `ZOE_DB_PATH: ${target} is not writable by this user: the service would fail to open ${dbPath}`;
    return [{ variable: "ZOE_DB_PATH", message, suggestion: null }];
  }
}

function nearestExisting(path: string): string {
  while (!existsSync(path) && dirname(path) !== path) path = dirname(path);
  return path;
}

/** What `bun src/main.ts --check-config` prints: errors, warnings, then the effective settings with secrets masked. */
export function formatConfigCheck(check: ConfigCheck): string {
  const count = (n: number, what: string) => `${n} ${what}${n === 1 ? "" : "s"}`;
  const lines = [
    `zoe-local: configuration is ${check.ok ? "valid" : "invalid"} (${count(check.errors.length, "error")}, ${count(check.warnings.length, "warning")})`,
    ...check.errors.map((e) => `error: ${e.message}`),
    ...check.warnings.map((w) => `warning: ${w.message}`),
  ];
  if (check.config && check.dashboard) {
    const dashboard = { ...check.dashboard, supabaseAnonKey: maskSecret(check.dashboard.supabaseAnonKey) };
    lines.push("effective configuration (secrets masked):", JSON.stringify({ ...maskedConfig(check.config), dashboard }, null, 2));
  }
  return lines.join("\n");
}

export async function main(env: Env): Promise<void> {
  const check = checkConfig(env);
  if (!check.config || !check.dashboard) {
    for (const e of check.errors) console.error(`zoe-local: refusing to start: ${e.message}`);
    process.exit(2);
  }
  const config = check.config;
  const dashboardConfig = check.dashboard;
  const flush = config.flush;
  const logger = createLogger({
    level: config.logLevel,
    secrets: configSecrets(config),
  });
  for (const w of check.warnings) {
    logger.warn("configuration warning", { variable: w.variable, message: w.message, suggestion: w.suggestion });
    console.error(`zoe-local: warning: ${w.message}`);
  }
  const clock = systemClock;
  const startedAt = clock.now();

  let store;
  try {
    store = openStore({
      path: config.dbPath,
      synchronous: config.synchronous,
      retentionMs: config.retentionMs,
      stateKeep: config.stateKeep,
      groupCommit: config.groupCommit,
      checkpointIntervalMs: config.checkpointIntervalMs,
      clock,
      onListenerError: (error) => logger.error("append listener failed", { error }),
    });
  } catch (error) {
    logger.error("refusing to start", { error });
    console.error(`zoe-local: refusing to start: ${(error as Error).message}`);
    process.exit(error instanceof StartupError ? 3 : 1);
  }

  const hub = createHub({ onSubscriberError: (error, mode) => logger.error("hub subscriber failed", { mode, error }) });
  store.onAppend((events) => hub.publish(events));
  const shutdown = new AbortController();
  // With no SUPABASE_URL there is no flusher: events stay local, health says so.
  let flusher: Flusher | null = null;
  let remoteLine = "no remote configured (events stay local)";
  const quarantine = new Quarantine(store, clock);
  // Bounded store, /metrics, /ready, the 5xx log.
  const build = readBuildInfo(join(import.meta.dir, ".."));
  const ops = createOperations({
    store,
    hub,
    clock,
    logger,
    limits: config.limits,
    criticalSubtypes: flush.criticalSubtypes,
    quarantine,
    flusher: () => flusher,
    build,
    remoteConfigured: flush.remote !== null,
  });
  // The last hour for the dashboard's charts, sampled in memory.
  const history = createHistory({ store, clock, intervalMs: config.historyIntervalMs });
  let remoteTarget: string | null = null;
  let reader: ReaderWorker | null = null;
  if (flush.remote) {
    const { url, serviceKey } = flush.remote;
    const sink: Sink =
      flush.sink === "direct"
        ? // Loaded only when chosen: supabase-js alone is ~35 ms of every start-up.
          (await import("./flush/sinks/direct.ts")).createDirectSink({ url, serviceKey, timeoutMs: flush.timeoutMs, clock, distinguishDuplicates: true })
        : createEdgeFunctionSink({ url, serviceKey, functionName: flush.functionName, secret: flush.secret, timeoutMs: flush.timeoutMs, clock });
    // The edge sink posts JSON: a worker thread reads, checks and encodes its
    // batches, off the thread that answers ingest.
    if (flush.sink === "edge" && store.path !== ":memory:") reader = startReaderWorker({ path: store.path, fallback: inlineReader(store), logger, lastSeq: (mode) => store.lastSeq(mode) });
    flusher = createFlusher({ store, sink: history.instrumentSink(ops.metrics.instrumentSink(sink)), quarantine, clock, logger, config: flush, reader: reader ?? undefined });
    const target = flush.sink === "direct" ? `${url}/rest/v1/zoe_events (direct)` : `${url}/functions/v1/${flush.functionName} (edge function)`;
    remoteTarget = target;
    remoteLine = `${target}, batch ${flush.batchSize}, every ${flush.activeIntervalMs / 1000} s in market hours / ${flush.offHoursIntervalMs / 1000} s off hours`;
  }
  const health = createHealth({ store, clock, startedAt, flusher, limits: ops.limits });
  const app = createApp({
    store,
    hub,
    health,
    logger,
    apiToken: config.apiToken,
    corsOrigins: config.corsOrigins,
    maxRequestBytes: config.maxRequestBytes,
    sse: config.sse,
    shutdown: shutdown.signal,
    plugins: [
      dashboardPlugin({ config: dashboardConfig, assets: () => buildDashboardAssets() }),
      ops.plugin,
      operatorRoutes({
        store,
        hub,
        health,
        readiness: ops.readiness,
        limits: ops.limits,
        history,
        build,
        clock,
        startedAt,
        flusher: () => flusher,
        remoteTarget,
        quarantine,
      }),
    ],
    hooks: ops.hooks,
    quarantine: {
      list: (mode, o) => quarantine.list(mode, o),
      count: (mode) => quarantine.count(mode),
      retry(mode, ids) {
        const released = quarantine.release(mode, ids);
        if (released > 0) void flusher?.requestFlush(mode);
        return released;
      },
    },
  });

  let server: ReturnType<typeof serveApp>;
  try {
    server = serveApp(app, { hostname: config.host, port: config.port, idleTimeoutS: config.idleTimeoutS });
  } catch (error) {
    logger.error("refusing to start: cannot listen", { host: config.host, port: config.port, error });
    console.error(`zoe-local: refusing to start: cannot listen on ${config.host}:${config.port}: ${(error as Error).message}`);
    store.close();
    process.exit(4);
  }

  const url = `http://${config.host.includes(":") ? `[${config.host}]` : config.host}:${server.port}`;
  logger.info("zoe-local listening", { url, version: build.version, commit: build.commit, db: store.path, remote: remoteLine, synchronous: config.synchronous, limits: config.limits });
  console.log(`zoe-local listening on ${url}`);
  console.log(`database: ${store.path} (synchronous=${config.synchronous})`);
  console.log(`remote: ${remoteLine}`);
  // Crash recovery: events a previous run left unflushed go out now.
  flusher?.start();
  history.start(shutdown.signal);
  // Retention in the background, chunk by chunk: after a long downtime there
  // may be millions of expired rows, and start-up must not wait for them.
  void runRetention({
    step: (limit) => store.pruneSome(limit),
    scheduler: systemScheduler,
    signal: shutdown.signal,
    intervalMs: 3_600_000,
    onPruned: (count) => logger.info("pruned flushed events past retention", { count }),
    onError: (error) => logger.warn("prune failed", { error }),
  });

  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.info("shutting down", { signal });
    ops.readiness.drain();
    // Every step below is bounded; this is the backstop if one is not. Exiting
    // without close() loses nothing: every acknowledged event is in the WAL.
    const boundMs = 5_000 + (flusher ? flush.shutdownMs : 0) + 5_000;
    setTimeout(() => {
      logger.error("shutdown overran its bound: exiting anyway", { bound_ms: boundMs });
      process.exit(1);
    }, boundMs).unref();
    shutdown.abort();
    // Streams end on the abort; a client that never reads must not hold the exit.
    // Ingest stops here, before the last flush, so it carries every stored event.
    await Promise.race([server.stop(false), Bun.sleep(5_000)]);
    await server.stop(true);
    if (flusher) {
      // Finishes the flush in flight, then one last flush, within ZOE_FLUSH_SHUTDOWN_MS.
      const { left } = await flusher.stop();
      logger.info("flusher stopped", { unflushed_left: left });
    }
    reader?.close();
    store.close();
    logger.info("stopped");
    process.exit(0);
  };
  process.on("SIGTERM", () => void stop("SIGTERM"));
  process.on("SIGINT", () => void stop("SIGINT"));
}

/** `bun src/main.ts [--check-config]`: start the service, or only validate its settings (exit 0 valid, 2 invalid). */
async function cli(args: string[], env: Env): Promise<void> {
  const unknown = args.filter((a) => a !== "--check-config");
  if (unknown.length > 0) {
    console.error(`zoe-local: unknown argument ${unknown[0]} (the only option is --check-config; settings come from the environment)`);
    process.exit(2);
  }
  if (args.includes("--check-config")) {
    const check = checkConfig(env);
    console.log(formatConfigCheck(check));
    process.exit(check.ok ? 0 : 2);
  }
  await main(env);
}

if (import.meta.main) await cli(process.argv.slice(2), process.env);
