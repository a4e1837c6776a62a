// The app on the wiring of src/main.ts, in process: a real SQLite file, the
// bounded store's operations, the operator routes, the quarantine, and, when
// given a remote, a started flusher whose edge sink goes there. For route tests
// (app.handle) that need more than testApp()'s bare app.
import { join } from "node:path";
import { type AppOptions, createApp } from "../../src/http/app.ts";
import { loadFlushConfig } from "../../src/config.ts";
import { CRITICAL_SUBTYPES } from "../../src/domain/events.ts";
import { createFlusher, type Flusher } from "../../src/flush/flusher.ts";
import { Quarantine } from "../../src/flush/quarantine.ts";
import { createEdgeFunctionSink } from "../../src/flush/sinks/edge-function.ts";
import { createOperations } from "../../src/http/operations.ts";
import { operatorRoutes } from "../../src/http/operator.ts";
import { systemClock } from "../../src/lib/clock.ts";
import { silentLogger } from "../../src/lib/log.ts";
import { readBuildInfo } from "../../src/ops/build-info.ts";
import { createHealth } from "../../src/ops/health.ts";
import { createHistory } from "../../src/ops/history.ts";
import { openStore } from "../../src/store/store.ts";
import { createHub } from "../../src/stream/hub.ts";
import { NO_LIMITS } from "./ops.ts";
import { tempDir } from "./tmp.ts";

const BUILD = readBuildInfo(join(import.meta.dir, "..", ".."));

export interface WiredAppOptions {
  /** Where the flusher sends (an edge function URL and its key); none: no flusher, as without SUPABASE_URL. */
  remote?: { url: string; serviceKey: string } | null;
  apiToken?: string | null;
  maxRequestBytes?: number;
  sse?: Partial<AppOptions["sse"]>;
  /** How long ago the service "started", for uptime figures. */
  startedAgoMs?: number;
}

export function wiredApp(options: WiredAppOptions = {}) {
  const dir = tempDir("zoe-wired-");
  const clock = systemClock;
  const startedAt = clock.now() - (options.startedAgoMs ?? 0);
  const store = openStore({ path: dir.file("zoe.db"), clock });
  const hub = createHub();
  store.onAppend((events) => hub.publish(events));
  const quarantine = new Quarantine(store, clock);
  let flusher: Flusher | null = null;
  const ops = createOperations({
    store,
    hub,
    clock,
    logger: silentLogger,
    limits: NO_LIMITS,
    criticalSubtypes: CRITICAL_SUBTYPES,
    quarantine,
    flusher: () => flusher,
    processMetrics: false,
  });
  const history = createHistory({ store, clock, intervalMs: 1000 });
  const shutdown = new AbortController();
  if (options.remote) {
    // Short backoff and timeout: a test waits on the flusher's retries.
    const settings = loadFlushConfig({
      ZOE_FLUSH_BACKOFF_MIN_MS: "50",
      ZOE_FLUSH_BACKOFF_MAX_MS: "200",
      ZOE_FLUSH_TIMEOUT_MS: "2000",
    });
    const sink = createEdgeFunctionSink({
      url: options.remote.url,
      serviceKey: options.remote.serviceKey,
      timeoutMs: settings.timeoutMs,
      clock,
    });
    flusher = createFlusher({
      store,
      sink: history.instrumentSink(sink),
      quarantine,
      clock,
      config: settings,
      signal: shutdown.signal,
    });
    flusher.start();
  }
  const health = createHealth({ store, clock, startedAt, flusher, limits: ops.limits });
  const app = createApp({
    store,
    hub,
    health,
    logger: silentLogger,
    apiToken: options.apiToken ?? null,
    corsOrigins: [],
    maxRequestBytes: options.maxRequestBytes ?? 1_048_576,
    sse: { heartbeatMs: 60_000, retryMs: 1000, maxBufferedBytes: 1 << 20, coalesceMs: 0, ...options.sse },
    shutdown: shutdown.signal,
    plugins: [
      ops.plugin,
      operatorRoutes({
        store,
        hub,
        health,
        readiness: ops.readiness,
        limits: ops.limits,
        history,
        build: BUILD,
        clock,
        startedAt,
        flusher: () => flusher,
        remoteTarget: options.remote ? "the test stack" : null,
        quarantine,
        flushPollMs: 20,
      }),
    ],
    hooks: ops.hooks,
    quarantine: {
      list: (m, o) => quarantine.list(m, o),
      count: (m) => quarantine.count(m),
      retry: (m, ids) => quarantine.release(m, ids),
    },
  });
  return {
    app,
    store,
    quarantine,
    history,
    /** Request against the app without a socket. */
    handle: (path: string, init?: RequestInit) => app.handle(new Request(`http://localhost${path}`, init)),
    async close() {
      shutdown.abort();
      await flusher?.stop();
      store.close();
      dir.cleanup();
    },
  };
}

export type WiredApp = ReturnType<typeof wiredApp>;
