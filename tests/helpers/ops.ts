// The app with the operations wiring of src/main.ts (bounded store, metrics,
// readiness) on a real SQLite file, a manual clock and a free-disk figure the
// test sets, for route tests with app.handle.
import { afterEach } from "bun:test";
import { createApp } from "../../src/http/app.ts";
import { manualClock } from "../../src/lib/clock.ts";
import { CRITICAL_SUBTYPES } from "../../src/domain/events.ts";
import { createHealth } from "../../src/ops/health.ts";
import { createHub } from "../../src/stream/hub.ts";
import type { LimitsConfig } from "../../src/store/limits.ts";
import { createLogger, type Logger, silentLogger } from "../../src/lib/log.ts";
import { createOperations, type OperationsOptions } from "../../src/http/operations.ts";
import { Quarantine } from "../../src/flush/quarantine.ts";
import type { EventInput } from "../../supabase/functions/_shared/event-schema.ts";
import { openStore } from "../../src/store/store.ts";
import { tempDir } from "./tmp.ts";

export const NO_LIMITS: LimitsConfig = {
  maxBacklogEvents: 0,
  maxBacklogBytes: 0,
  minFreeDiskBytes: 0,
  criticalReserveEvents: 0,
  criticalReserveBytes: 0,
};

export interface OpsAppOptions {
  limits?: Partial<LimitsConfig>;
  apiToken?: string | null;
  readiness?: OperationsOptions["readiness"];
  /** Capture log lines (parsed) instead of discarding them. */
  logLines?: Record<string, unknown>[];
  groupCommit?: boolean;
}

export function opsApp(options: OpsAppOptions = {}) {
  const dir = tempDir("zoe-ops-");
  const clock = manualClock("2026-06-02T14:00:00Z");
  const store = openStore({ path: dir.file("zoe.db"), clock, groupCommit: options.groupCommit ?? true });
  const hub = createHub();
  store.onAppend((events) => hub.publish(events));
  const quarantine = new Quarantine(store, clock);
  const disk = { free: (100 * 1_073_741_824) as number | null };
  const logger: Logger = options.logLines
    ? createLogger({ level: "debug", write: (line) => options.logLines!.push(JSON.parse(line)) })
    : silentLogger;
  const ops = createOperations({
    store,
    hub,
    clock,
    logger,
    limits: { ...NO_LIMITS, ...options.limits },
    criticalSubtypes: CRITICAL_SUBTYPES,
    quarantine,
    readiness: options.readiness,
    freeDiskBytes: () => disk.free,
    processMetrics: false,
  });
  const shutdown = new AbortController();
  const app = createApp({
    store,
    hub,
    health: createHealth({ store, clock, startedAt: clock.now(), limits: ops.limits }),
    logger,
    apiToken: options.apiToken ?? null,
    corsOrigins: [],
    maxRequestBytes: 1_048_576,
    sse: { heartbeatMs: 60_000, retryMs: 1000, maxBufferedBytes: 1 << 20, coalesceMs: 0 },
    shutdown: shutdown.signal,
    plugins: [ops.plugin],
    hooks: ops.hooks,
  });
  const handle = (path: string, init?: RequestInit) => app.handle(new Request(`http://localhost${path}`, init));
  let n = 0;
  const ev = (extra: Partial<EventInput> = {}): EventInput => ({
    mode: "live",
    source: "bot",
    type: "T",
    subtype: "TICK",
    body: `e${++n}`,
    ...extra,
  });
  return {
    dir,
    clock,
    store,
    hub,
    quarantine,
    ops,
    disk,
    app,
    handle,
    ev,
    post: (body: unknown, headers: Record<string, string> = {}) =>
      handle("/local/events", {
        method: "POST",
        headers: { "content-type": "application/json", ...headers },
        body: JSON.stringify(body),
      }),
    /** Parsed sample values of GET /metrics, keyed `name{labels}` as printed. */
    async metrics(headers: Record<string, string> = {}): Promise<Map<string, number>> {
      const res = await handle("/metrics", { headers });
      if (res.status !== 200) throw new Error(`GET /metrics: ${res.status} ${await res.text()}`);
      return parseMetrics(await res.text());
    },
    close() {
      shutdown.abort();
      store.close();
      dir.cleanup();
    },
  };
}

export function parseMetrics(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split("\n")) {
    if (line === "" || line.startsWith("#")) continue;
    const at = line.lastIndexOf(" ");
    out.set(line.slice(0, at), Number(line.slice(at + 1)));
  }
  return out;
}

export type OpsApp = ReturnType<typeof opsApp>;

/**
 * For a test file: returns a maker of ops apps that are all closed after each
 * test. Call it once at the top level of the file.
 */
export function opsAppsClosedAfterEach(): (options?: OpsAppOptions) => OpsApp {
  const made: OpsApp[] = [];
  afterEach(() => {
    for (const t of made.splice(0).reverse()) t.close();
  });
  return (options = {}) => {
    const t = opsApp(options);
    made.push(t);
    return t;
  };
}
