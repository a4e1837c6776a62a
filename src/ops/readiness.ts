// Readiness (GET /ready), beside liveness (GET /health): can this instance
// take events right now? Not when it is draining for shutdown, when the
// database cannot be written, or when the bounded store refuses ordinary
// events. Write failures count over a window, Fluent Bit style: one failed
// write is noise, `failureThreshold` within `windowMs` is an outage, and the
// next successful write ends it.
import { accessSync, constants } from "node:fs";
import type { Clock } from "../lib/clock.ts";
import type { Limits } from "../store/limits.ts";
import type { EventStore } from "../store/store.ts";

export interface ReadinessOptions {
  store: EventStore;
  clock: Clock;
  limits?: Limits | null;
  /** Failed writes within `windowMs` that make the instance not ready (default 3). */
  failureThreshold?: number;
  /** Default 60 s. */
  windowMs?: number;
}

export interface ReadinessReport {
  ready: boolean;
  /** Why not, one line each; empty when ready. */
  reasons: string[];
  checks: {
    draining: boolean;
    db: "ok" | "unavailable" | "read_only";
    recent_write_failures: number;
    last_write_error: string | null;
    accepting: "all" | "critical" | "none" | "unlimited";
  };
}

export interface Readiness {
  /** Outcome of one write to the store (an ingest commit). */
  recordWrite(ok: boolean, error?: unknown): void;
  /** Shutdown has begun: not ready from now on. */
  drain(): void;
  check(): ReadinessReport;
}

export function createReadiness(options: ReadinessOptions): Readiness {
  const { store, clock, limits } = options;
  const threshold = options.failureThreshold ?? 3;
  const windowMs = options.windowMs ?? 60_000;
  const failures: number[] = []; // times of failed writes since the last success
  let lastError: string | null = null;
  let draining = false;

  const recent = () => {
    const since = clock.now() - windowMs;
    while (failures.length > 0 && failures[0]! < since) failures.shift();
    return failures.length;
  };

  // A probe that takes no lock: a BEGIN IMMEDIATE here could wait out the
  // busy timeout on the event loop. Real write failures are what recordWrite sees.
  const db = (): ReadinessReport["checks"]["db"] => {
    if (!store.ping()) return "unavailable";
    if (store.path === ":memory:") return "ok";
    try {
      accessSync(store.path, constants.W_OK);
      return "ok";
    } catch {
      return "read_only";
    }
  };

  return {
    recordWrite(ok, error) {
      if (ok) {
        failures.length = 0;
        lastError = null;
        return;
      }
      failures.push(clock.now());
      if (failures.length > threshold * 4) failures.shift(); // bounded: only the count matters
      lastError = error instanceof Error ? error.message : error === undefined ? "write failed" : String(error);
    },
    drain() {
      draining = true;
    },
    check() {
      const reasons: string[] = [];
      if (draining) reasons.push("draining: the service is shutting down");
      const dbState = db();
      if (dbState === "unavailable") reasons.push("database does not answer");
      if (dbState === "read_only") reasons.push(`database file ${store.path} is not writable`);
      const failed = recent();
      if (failed >= threshold)
        reasons.push(`${failed} failed writes in the last ${Math.round(windowMs / 1000)} s (last: ${lastError})`);
      const accepting = limits ? limits.status().accepting : "unlimited";
      if (accepting === "critical") reasons.push("backlog or disk limit reached: only critical events are accepted");
      if (accepting === "none") reasons.push("backlog or disk limit reached: no events are accepted");
      return {
        ready: reasons.length === 0,
        reasons,
        checks: {
          draining,
          db: dbState,
          recent_write_failures: failed,
          last_write_error: failed > 0 ? lastError : null,
          accepting,
        },
      };
    },
  };
}
