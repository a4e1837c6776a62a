// Composition root: parse config once, open the store, wire the hub, build
// the app, listen, and shut down cleanly on SIGTERM/SIGINT.
import { join } from "node:path";
import { createApp, serveApp } from "./http/app.ts";
import { systemClock } from "./lib/clock.ts";
import { configSecrets, loadConfig } from "./config.ts";
import { StartupError } from "./domain/errors.ts";
import { createHealth } from "./ops/health.ts";
import { readBuildInfo } from "./ops/build-info.ts";
import { createFlusher, type Flusher } from "./flush/flusher.ts";
import { createHub } from "./stream/hub.ts";
import { createLogger } from "./lib/log.ts";
import { Quarantine } from "./flush/quarantine.ts";
import type { Sink } from "./flush/sink.ts";
import { createDirectSink } from "./flush/sinks/direct.ts";
import { createEdgeFunctionSink } from "./flush/sinks/edge-function.ts";
import { openStore } from "./store/store.ts";
import { createOperations } from "./http/operations.ts";
import { buildDashboardAssets } from "./dashboard/build.ts";
import { loadDashboardConfig } from "./dashboard/config.ts";
import { dashboardPlugin } from "./dashboard/plugin.ts";

export async function main(env: Record<string, string | undefined>): Promise<void> {
  let config;
  let dashboardConfig;
  try {
    config = loadConfig(env);
    dashboardConfig = loadDashboardConfig(env);
  } catch (error) {
    console.error(`zoe-local: refusing to start: ${(error as Error).message}`);
    process.exit(2);
  }
  const flush = config.flush;
  const logger = createLogger({
    level: config.logLevel,
    secrets: configSecrets(config),
  });
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
  if (flush.remote) {
    const { url, serviceKey } = flush.remote;
    const sink: Sink =
      flush.sink === "direct"
        ? createDirectSink({ url, serviceKey, timeoutMs: flush.timeoutMs, clock, distinguishDuplicates: true })
        : createEdgeFunctionSink({ url, serviceKey, functionName: flush.functionName, secret: flush.secret, timeoutMs: flush.timeoutMs, clock });
    flusher = createFlusher({ store, sink: ops.metrics.instrumentSink(sink), quarantine, clock, logger, config: flush });
    const target = flush.sink === "direct" ? `${url}/rest/v1/zoe_events (direct)` : `${url}/functions/v1/${flush.functionName} (edge function)`;
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
    plugins: [dashboardPlugin({ config: dashboardConfig, assets: () => buildDashboardAssets() }), ops.plugin],
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

  const pruneEveryMs = 3_600_000;
  const prune = () => {
    try {
      const n = store.prune();
      if (n > 0) logger.info("pruned flushed events past retention", { count: n });
    } catch (error) {
      logger.warn("prune failed", { error });
    }
  };
  prune();
  const pruneTimer = setInterval(prune, pruneEveryMs);

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
    clearInterval(pruneTimer);
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
    store.close();
    logger.info("stopped");
    process.exit(0);
  };
  process.on("SIGTERM", () => void stop("SIGTERM"));
  process.on("SIGINT", () => void stop("SIGINT"));
}

if (import.meta.main) await main(process.env);
