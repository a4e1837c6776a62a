// Composition root: parse config once, open the store, wire the hub, build
// the app, listen, and shut down cleanly on SIGTERM/SIGINT. main() reads as
// those steps; each step below builds one part and hands it on.
import { join } from "node:path";
import { createApp, serveApp } from "./http/app.ts";
import { type Clock, systemClock } from "./lib/clock.ts";
import { type Config, configSecrets, type Env, logFormatVar } from "./config.ts";
import { checkConfig, formatConfigCheck } from "./config-check.ts";
import { StartupError } from "./domain/errors.ts";
import { createHealth, type HealthSource } from "./ops/health.ts";
import { type BuildInfo, readBuildInfo } from "./ops/build-info.ts";
import { createHistory, type History } from "./ops/history.ts";
import { operatorRoutes } from "./http/operator.ts";
import { createFlusher, type Flusher } from "./flush/flusher.ts";
import { createHub, type Hub } from "./stream/hub.ts";
import { createLogger, type LogFormat, type LogFormatSetting, type Logger, resolveLogFormat } from "./lib/log.ts";
import { Quarantine } from "./flush/quarantine.ts";
import type { Sink } from "./flush/sink.ts";
import { createEdgeFunctionSink } from "./flush/sinks/edge-function.ts";
import { inlineReader, type ReaderWorker, startReaderWorker } from "./flush/reader.ts";
import { type ReplayReader, startReplayReader } from "./stream/replay-reader.ts";
import { runRetention } from "./store/retention.ts";
import { type EventStore, openStore } from "./store/store.ts";
import { rangeFloor } from "./store/ranges.ts";
import { fetchRemoteMaxSeqs } from "./flush/remote-max.ts";
import { createWriterWatch, type WriterWatch } from "./flush/writers.ts";
import { MODES, type Mode } from "../supabase/functions/_shared/event-schema.ts";
import { systemScheduler } from "./lib/scheduler.ts";
import { createOperations, type Operations } from "./http/operations.ts";
import { buildDashboardAssets } from "./dashboard/build.ts";
import type { DashboardConfig } from "./dashboard/config.ts";
import { dashboardPlugin } from "./dashboard/plugin.ts";

/** The run's log format, decided once: every line the service prints is in it (docs/operations.md, "Logs"). */
function runLogFormat(env: Env): LogFormat {
  let setting: LogFormatSetting = "auto";
  try {
    setting = logFormatVar(env);
  } catch {
    // A bad ZOE_LOG_FORMAT is one of the errors reported below, in the automatic format.
  }
  return resolveLogFormat(setting, Boolean(process.stdout.isTTY));
}

export async function main(env: Env): Promise<void> {
  const format = runLogFormat(env);
  const check = checkConfig(env);
  if (!check.config || !check.dashboard) {
    const early = createLogger({ level: "error", format });
    for (const e of check.errors) early.error(`refusing to start: ${e.message}`, { variable: e.variable });
    process.exit(2);
  }
  const config = check.config;
  const logger = createLogger({ level: config.logLevel, secrets: configSecrets(config), format });
  for (const w of check.warnings)
    logger.warn(`configuration warning: ${w.message}`, { variable: w.variable, suggestion: w.suggestion });
  const clock = systemClock;
  const startedAt = clock.now();
  const remoteMax = await remoteMaxSeqs(config, logger);
  const store = openStoreOrExit(config, clock, logger, remoteMax);
  const hub = createHub({ onSubscriberError: (error, mode) => logger.error("hub subscriber failed", { mode, error }) });
  store.onAppend((events) => hub.publish(events));
  const shutdown = new AbortController();
  const quarantine = new Quarantine(store, clock);
  // What the remote says of each mode's writers (a second store writing a mode).
  const writers = createWriterWatch({
    self: { store_id: store.storeId, started_at: store.startedAt },
    clock,
    onSecondWriter: (mode, second) =>
      logger.error("a second store writes this mode", {
        mode,
        detected_at: second.detected_at,
        store_ids: second.writers.map((w) => w.store_id),
      }),
  });
  const build = readBuildInfo(join(import.meta.dir, ".."));
  // The flusher is built after the sink is instrumented by ops and history.
  let flusher: Flusher | null = null;
  // Bounded store, /metrics, /ready, the 5xx log.
  const ops = createOperations({
    store,
    hub,
    clock,
    logger,
    limits: config.limits,
    criticalSubtypes: config.flush.criticalSubtypes,
    quarantine,
    flusher: () => flusher,
    build,
    remoteConfigured: config.flush.remote !== null,
    writers,
  });
  // The last hour for the dashboard's charts, sampled in memory.
  const history = createHistory({ store, clock, intervalMs: config.historyIntervalMs });
  const remote = await startRemote({ config, store, quarantine, clock, logger, ops, history, writers });
  flusher = remote.flusher;
  const health = createHealth({
    store,
    clock,
    startedAt,
    flusher: remote.flusher,
    limits: ops.limits,
    writers: remote.flusher ? writers : null,
  });
  const parts = {
    config,
    dashboard: check.dashboard,
    writers,
    store,
    hub,
    health,
    logger,
    ops,
    history,
    build,
    clock,
    startedAt,
    remote,
    quarantine,
  };
  // SSE replays read and frame their pages on a worker thread, off the loop that answers ingest.
  const replayReader = store.path === ":memory:" ? undefined : startReplayReader({ path: store.path, logger });
  // Streams end on the shutdown signal; the worker's connection closes before the store's.
  shutdown.signal.addEventListener("abort", () => replayReader?.close(), { once: true });
  const app = buildApp({ ...parts, shutdown: shutdown.signal, replayReader });
  const server = listenOrExit(app, config, store, logger);

  const url = `http://${config.host.includes(":") ? `[${config.host}]` : config.host}:${server.port}`;
  // The start line is printed whatever ZOE_LOG_LEVEL says: where the service
  // listens, on which database, flushing where, is what an operator reads first.
  createLogger({ level: "info", secrets: configSecrets(config), format }).info(`zoe-local listening on ${url}`, {
    url,
    version: build.version,
    commit: build.commit,
    db: store.path,
    store_id: store.storeId,
    seq_ranges: Object.fromEntries(MODES.map((m) => [m, store.currentRange(m).start_seq])),
    remote: remote.line,
    synchronous: config.synchronous,
    limits: config.limits,
  });
  // Crash recovery: events a previous run left unflushed go out now.
  remote.flusher?.start();
  history.start(shutdown.signal);
  // Off the start path (ops/prom.ts): loaded once the service answers.
  ops.metrics.loadProcessMetrics().catch((error) => logger.error("cannot load the process metrics", { error }));
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
  const stop = stopper({ config, logger, ops, shutdown, server, remote, store });
  process.on("SIGTERM", () => void stop("SIGTERM"));
  process.on("SIGINT", () => void stop("SIGINT"));
}

/**
 * Supabase's highest seq per mode, so this start's seq ranges begin above it;
 * null (the time base alone) when there is no remote or it did not answer
 * within about a second: the bot is never kept waiting on the remote.
 */
async function remoteMaxSeqs(config: Config, logger: Logger): Promise<Map<Mode, number> | null> {
  if (!config.flush.remote) return null;
  const answer = await fetchRemoteMaxSeqs({ ...config.flush.remote, timeoutMs: 1000 });
  if (answer.seqs === null)
    logger.warn("seq ranges start from the time base alone: the remote's highest seqs are unknown", {
      reason: answer.reason,
    });
  return answer.seqs;
}

function openStoreOrExit(
  config: Config,
  clock: Clock,
  logger: Logger,
  remoteMax: Map<Mode, number> | null,
): EventStore {
  try {
    return openStore({
      // Each start's range begins above the store, its start time x 1000 and
      // the remote's highest seq: docs/flushing.md, "Seq ranges".
      seqFloor: (mode) => rangeFloor(clock.now(), remoteMax?.get(mode) ?? null),
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
    logger.error(`refusing to start: ${(error as Error).message}`, { error });
    process.exit(error instanceof StartupError ? 3 : 1);
  }
}

/** The remote side: sink, flusher and reader, or none of them when no SUPABASE_URL is set. */
interface Remote {
  flusher: Flusher | null;
  reader: ReaderWorker | null;
  /** Where batches go, for /status (null: no remote). */
  target: string | null;
  /** The start-up line about the remote. */
  line: string;
}

interface RemoteParts {
  config: Config;
  store: EventStore;
  quarantine: Quarantine;
  clock: Clock;
  logger: Logger;
  ops: Operations;
  history: History;
  writers: WriterWatch;
}

async function startRemote({
  config,
  store,
  quarantine,
  clock,
  logger,
  ops,
  history,
  writers,
}: RemoteParts): Promise<Remote> {
  const flush = config.flush;
  // With no SUPABASE_URL there is no flusher: events stay local, health says so.
  if (!flush.remote)
    return { flusher: null, reader: null, target: null, line: "no remote configured (events stay local)" };
  const { url, serviceKey } = flush.remote;
  // Every batch names the store and this start of it (docs/flushing.md, "Store identity").
  const writer = { store_id: store.storeId, started_at: store.startedAt };
  const sink: Sink =
    flush.sink === "direct"
      ? // Loaded only when chosen: supabase-js alone is ~35 ms of every start-up.
        (await import("./flush/sinks/direct.ts")).createDirectSink({
          url,
          serviceKey,
          timeoutMs: flush.timeoutMs,
          clock,
          distinguishDuplicates: true,
          writer,
        })
      : createEdgeFunctionSink({
          url,
          serviceKey,
          functionName: flush.functionName,
          secret: flush.secret,
          timeoutMs: flush.timeoutMs,
          clock,
          writer,
        });
  // The edge sink posts JSON: a worker thread reads, checks and encodes its
  // batches, off the thread that answers ingest.
  const reader =
    flush.sink === "edge" && store.path !== ":memory:"
      ? startReaderWorker({
          path: store.path,
          fallback: inlineReader(store),
          logger,
          lastSeq: (mode) => store.lastSeq(mode),
        })
      : null;
  const flusher = createFlusher({
    store,
    sink: history.instrumentSink(ops.metrics.instrumentSink(writers.instrumentSink(sink))),
    quarantine,
    clock,
    logger,
    config: flush,
    reader: reader ?? undefined,
  });
  const target =
    flush.sink === "direct"
      ? `${url}/rest/v1/zoe_events (direct)`
      : `${url}/functions/v1/${flush.functionName} (edge function)`;
  const line = `${target}, batch ${flush.batchSize}, every ${flush.activeIntervalMs / 1000} s in market hours / ${flush.offHoursIntervalMs / 1000} s off hours`;
  return { flusher, reader, target, line };
}

interface AppParts extends Omit<RemoteParts, "config"> {
  config: Config;
  dashboard: DashboardConfig;
  hub: Hub;
  health: HealthSource;
  build: BuildInfo;
  startedAt: number;
  remote: Remote;
  shutdown: AbortSignal;
  replayReader?: ReplayReader;
}

function buildApp(parts: AppParts): ReturnType<typeof createApp> {
  const { config, store, hub, health, quarantine, remote } = parts;
  return createApp({
    store,
    hub,
    health,
    logger: parts.logger,
    apiToken: config.apiToken,
    allowedHosts: config.allowedHosts,
    corsOrigins: config.corsOrigins,
    maxRequestBytes: config.maxRequestBytes,
    sse: config.sse,
    shutdown: parts.shutdown,
    replayReader: parts.replayReader,
    plugins: [
      dashboardPlugin({ config: parts.dashboard, assets: () => buildDashboardAssets() }),
      parts.ops.plugin,
      operatorRoutes({
        store,
        hub,
        health,
        readiness: parts.ops.readiness,
        limits: parts.ops.limits,
        history: parts.history,
        build: parts.build,
        clock: parts.clock,
        startedAt: parts.startedAt,
        flusher: () => remote.flusher,
        remoteTarget: remote.target,
        quarantine,
      }),
    ],
    hooks: parts.ops.hooks,
    quarantine: {
      list: (mode, o) => quarantine.list(mode, o),
      count: (mode) => quarantine.count(mode),
      retry(mode, ids) {
        const released = quarantine.release(mode, ids);
        if (released > 0) void remote.flusher?.requestFlush(mode);
        return released;
      },
    },
  });
}

type Server = ReturnType<typeof serveApp>;

function listenOrExit(app: ReturnType<typeof createApp>, config: Config, store: EventStore, logger: Logger): Server {
  try {
    return serveApp(app, { hostname: config.host, port: config.port, idleTimeoutS: config.idleTimeoutS });
  } catch (error) {
    logger.error(`refusing to start: cannot listen on ${config.host}:${config.port}: ${(error as Error).message}`, {
      host: config.host,
      port: config.port,
      error,
    });
    store.close();
    process.exit(4);
  }
}

interface StopParts {
  config: Config;
  logger: Logger;
  ops: Operations;
  shutdown: AbortController;
  server: Server;
  remote: Remote;
  store: EventStore;
}

/** The SIGTERM/SIGINT handler: drain, stop ingest, last flush, close, exit 0; once, however many signals come. */
function stopper({
  config,
  logger,
  ops,
  shutdown,
  server,
  remote,
  store,
}: StopParts): (signal: string) => Promise<void> {
  let stopping = false;
  return async (signal) => {
    if (stopping) return;
    stopping = true;
    logger.info("shutting down", { signal });
    ops.readiness.drain();
    // Every step below is bounded; this is the backstop if one is not. Exiting
    // without close() loses nothing: every acknowledged event is in the WAL.
    const boundMs = 5_000 + (remote.flusher ? config.flush.shutdownMs : 0) + 5_000;
    setTimeout(() => {
      logger.error("shutdown overran its bound: exiting anyway", { bound_ms: boundMs });
      process.exit(1);
    }, boundMs).unref();
    shutdown.abort();
    // Streams end on the abort; a client that never reads must not hold the exit.
    // Ingest stops here, before the last flush, so it carries every stored event.
    await Promise.race([server.stop(false), Bun.sleep(5_000)]);
    await server.stop(true);
    if (remote.flusher) {
      // Finishes the flush in flight, then one last flush, within ZOE_FLUSH_SHUTDOWN_MS.
      const { left } = await remote.flusher.stop();
      logger.info("flusher stopped", { unflushed_left: left });
    }
    remote.reader?.close();
    store.close();
    logger.info("stopped");
    process.exit(0);
  };
}

/** `bun src/main.ts [--check-config]`: start the service, or only validate its settings (exit 0 valid, 2 invalid). */
async function cli(args: string[], env: Env): Promise<void> {
  const unknown = args.filter((a) => a !== "--check-config");
  if (unknown.length > 0) {
    console.error(
      `zoe-local: unknown argument ${unknown[0]} (the only option is --check-config; settings come from the environment)`,
    );
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
