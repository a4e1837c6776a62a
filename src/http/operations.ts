// What an operator of the bot box needs, wired together: the bounded store
// (src/store/limits.ts), readiness (src/ops/readiness.ts), Prometheus metrics
// (src/ops/metrics.ts) and a rate-limited log of 5xx answers. createApp gets the
// hooks; the plugin mounts GET /metrics and GET /ready (same token rules as
// the other reads: the app's onRequest guard covers plugins too).
import { Elysia } from "elysia";
import type { AppHooks } from "./hooks.ts";
import { routeDocs } from "./openapi.ts";
import { onlyParams } from "./query.ts";
import type { BuildInfo } from "../ops/build-info.ts";
import type { Clock } from "../lib/clock.ts";
import { ZoeError } from "../domain/errors.ts";
import type { FlushStatusSource } from "../ops/health.ts";
import type { Hub } from "../stream/hub.ts";
import { createLimits, type Limits, type LimitsConfig } from "../store/limits.ts";
import type { Logger } from "../lib/log.ts";
import { createMetrics, type Metrics } from "../ops/metrics.ts";
import type { GaugeSources } from "../ops/gauges.ts";
import { createReadiness, type Readiness } from "../ops/readiness.ts";
import type { Mode } from "../../supabase/functions/_shared/event-schema.ts";
import type { EventStore } from "../store/store.ts";

export interface OperationsOptions {
  store: EventStore;
  hub: Hub;
  clock: Clock;
  logger: Logger;
  limits: LimitsConfig;
  criticalSubtypes: readonly string[];
  quarantine?: { count(mode: Mode): number } | null;
  /** The flusher, once there is one (it is built after the sink is instrumented). */
  flusher?: () => FlushStatusSource | null;
  /** The writers of each mode as the remote reports them (zoe_mode_writers, zoe_second_writer_total). */
  writers?: GaugeSources["writers"];
  readiness?: { failureThreshold?: number; windowMs?: number };
  /** Free bytes on the database's filesystem (tests); default statfs. */
  freeDiskBytes?: () => number | null;
  processMetrics?: boolean;
  /** zoe_build_info's labels (main.ts reads them once). */
  build?: BuildInfo | null;
  /** Whether SUPABASE_URL is set (zoe_remote_configured). */
  remoteConfigured?: boolean;
  /** At most one log line per error code per this interval (default 10 s). */
  errorLogIntervalMs?: number;
}

export interface Operations {
  limits: Limits;
  readiness: Readiness;
  metrics: Metrics;
  hooks: AppHooks;
  // biome-ignore lint/suspicious/noExplicitAny: a plugin of any route shape
  plugin: Elysia<any, any, any, any, any, any, any>;
}

export function createOperations(options: OperationsOptions): Operations {
  const { store, clock, logger } = options;
  const limits = createLimits({
    store,
    config: options.limits,
    criticalSubtypes: options.criticalSubtypes,
    clock,
    freeDiskBytes: options.freeDiskBytes,
  });
  const readiness = createReadiness({ store, clock, limits, ...options.readiness });
  const flusher = options.flusher ?? (() => null);
  const metrics = createMetrics({
    store,
    hub: options.hub,
    clock,
    limits,
    quarantine: options.quarantine,
    flusher: { status: (mode) => flusher()?.status(mode) ?? {} },
    processMetrics: options.processMetrics,
    build: options.build,
    storeId: store.storeId,
    writers: options.writers ?? null,
    ready: () => readiness.check().ready,
    remoteConfigured: options.remoteConfigured,
  });

  // A full backlog or disk refuses thousands of requests a second: log the
  // first of each code, then a summary line at most every interval.
  const every = options.errorLogIntervalMs ?? 10_000;
  const logged = new Map<string, { at: number; suppressed: number }>();
  const logServerError = (error: ZoeError, status: number, path: string) => {
    const now = clock.now();
    const last = logged.get(error.code);
    if (last && now - last.at < every) {
      last.suppressed++;
      return;
    }
    logged.set(error.code, { at: now, suppressed: 0 });
    const level = error.code === "backlog_full" || error.code === "disk_low" ? "warn" : "error";
    logger[level]("request failed", {
      status,
      code: error.code,
      path,
      error,
      suppressed_since_last: last?.suppressed ?? 0,
    });
  };

  const hooks: AppHooks = {
    admit: (events) => limits.admit(events),
    ingested(events, results, ms) {
      readiness.recordWrite(true);
      metrics.ingested(events, results, ms);
    },
    failed(error, status, request) {
      const code = error instanceof ZoeError ? error.code : status >= 500 ? "internal" : "invalid_request";
      const path = request === null ? null : pathOf(request.url);
      if (request?.method === "POST" && path === "/local/events") metrics.ingestFailed(status, code);
      if (code === "store_unavailable") readiness.recordWrite(false, error);
      if (status >= 500) {
        metrics.serverError(code);
        // Unhandled errors are logged by the app itself.
        if (error instanceof ZoeError) logServerError(error, status, path ?? "");
      }
    },
    streamClosed: (mode, reason) => metrics.streamClosed(mode, reason),
  };

  const plugin = new Elysia({ name: "zoe-operations" })
    .get(
      "/metrics",
      async ({ request }) => {
        onlyParams(new URL(request.url), ["token"]);
        return new Response(await metrics.text(), { headers: { "content-type": metrics.contentType } });
      },
      { detail: routeDocs["GET /metrics"] },
    )
    .get(
      "/ready",
      ({ request }) => {
        onlyParams(new URL(request.url), ["token"]);
        const report = readiness.check();
        return new Response(
          JSON.stringify({
            status: report.ready ? "ready" : "not_ready",
            reasons: report.reasons,
            checks: report.checks,
          }),
          {
            status: report.ready ? 200 : 503,
            headers: { "content-type": "application/json" },
          },
        );
      },
      { detail: routeDocs["GET /ready"] },
    );

  return { limits, readiness, metrics, hooks, plugin };
}

/** The path of a request URL, absolute or (no Host) a bare path; never throws. */
function pathOf(url: string): string {
  const scheme = url.indexOf("//");
  const start = scheme < 0 ? 0 : url.indexOf("/", scheme + 2);
  if (start < 0) return "/";
  const end = url.slice(start).search(/[?#]/);
  return end < 0 ? url.slice(start) : url.slice(start, start + end);
}
