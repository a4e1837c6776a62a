// Builds the real app on a real SQLite file in a temp dir, for route tests
// (app.handle) and wire tests (serveApp on port 0).
import { type AppOptions, createApp, serveApp } from "../../src/http/app.ts";
import { type Clock, systemClock } from "../../src/lib/clock.ts";
import { createHealth } from "../../src/ops/health.ts";
import { createHub, type Hub } from "../../src/stream/hub.ts";
import { startReplayReader } from "../../src/stream/replay-reader.ts";
import { silentLogger } from "../../src/lib/log.ts";
import type { EventInput, Mode } from "../../supabase/functions/_shared/event-schema.ts";
import { openStore, type StoreOptions } from "../../src/store/store.ts";
import { tempDir } from "./tmp.ts";

export interface TestAppOptions extends Partial<Omit<AppOptions, "store" | "hub" | "health" | "sse">> {
  store?: Partial<Omit<StoreOptions, "path">>;
  sse?: Partial<AppOptions["sse"]>;
  clock?: Clock;
  /** Read SSE replay pages on a worker thread, as the service does (default: on the event loop). */
  replayWorker?: boolean;
}

export function testApp(options: TestAppOptions = {}) {
  const dir = tempDir("zoe-app-");
  const clock = options.clock ?? systemClock;
  const store = openStore({ path: dir.file("zoe.db"), clock, ...options.store });
  const hub: Hub = createHub();
  store.onAppend((events) => hub.publish(events));
  const shutdown = new AbortController();
  const replayReader = options.replayWorker ? startReplayReader({ path: store.path, logger: silentLogger }) : undefined;
  const app = createApp({
    replayReader,
    logger: silentLogger,
    apiToken: null,
    corsOrigins: ["http://localhost:5173"],
    maxRequestBytes: 1_048_576,
    shutdown: shutdown.signal,
    ...options,
    store,
    hub,
    health: createHealth({ store, clock, startedAt: clock.now() }),
    sse: { heartbeatMs: 60_000, retryMs: 2_000, maxBufferedBytes: 4 * 1_048_576, coalesceMs: 2, ...options.sse },
  });
  let server: ReturnType<typeof serveApp> | null = null;
  return {
    app,
    store,
    hub,
    dir,
    shutdown,
    /** Request against the app without a socket. */
    handle: (path: string, init?: RequestInit) => app.handle(new Request(`http://localhost${path}`, init)),
    /** Listens on 127.0.0.1, a free port; returns the base URL. */
    listen(): string {
      server = serveApp(app, { hostname: "127.0.0.1", port: 0 });
      return `http://127.0.0.1:${server.port}`;
    },
    async close() {
      shutdown.abort();
      if (server) await server.stop(true);
      replayReader?.close();
      store.close();
      dir.cleanup();
    },
  };
}

export type TestApp = ReturnType<typeof testApp>;

let counter = 0;
/** A valid event; `extra` overrides fields. */
export function event(mode: Mode = "live", extra: Record<string, unknown> = {}): EventInput {
  counter++;
  return {
    mode,
    source: "bot",
    type: "ORDER",
    subtype: "BUY_FILLED",
    body: `event ${counter}`,
    ...extra,
  } as EventInput;
}

export function postJson(body: unknown, headers: Record<string, string> = {}): RequestInit {
  return {
    method: "POST",
    headers: { "content-type": "application/json", ...headers },
    body: typeof body === "string" ? body : JSON.stringify(body),
  };
}
