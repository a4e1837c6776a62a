// What the soak's child processes are given (argv[2], JSON) and print (one
// JSON object a line). Windows are numbered from a shared wall-clock start,
// so the rows of every process line up.
import type { LatencySummary } from "../bench/lib.ts";

/** Every this many events one is a fill (BUY_FILLED): it triggers an immediate flush (at 2,000/s one every 5 s). */
export const CRITICAL_EVERY = 10_000;

export interface LoadArgs {
  url: string;
  rate: number;
  connections: number;
  mode: "live" | "paper";
  /** Source and idempotency-key prefix of this run's events. */
  run: string;
  startEpoch: number;
  windowMs: number;
}

export interface LoadWindow {
  type: "window";
  index: number;
  sent: number;
  acked: number;
  errors: number;
  /** Scheduled time to answer, acknowledged requests. */
  latencyMs: LatencySummary;
  queued: number;
}

export interface LoadFinal {
  type: "final";
  sent: number;
  acked: number;
  errors: number;
  /** n of the events that were not acknowledged (error, or never answered). */
  unacked: number[];
  statuses: Record<string, number>;
  /** CPU this process used, in cores, over its life. */
  cores: number;
}

export interface SseArgs {
  url: string;
  clients: number;
  mode: "live" | "paper";
  startEpoch: number;
  windowMs: number;
}

export interface SseWindow {
  type: "window";
  index: number;
  events: number;
  /** Publisher's sent_at to arrival here. */
  latencyMs: LatencySummary;
  gaps: number;
  reconnects: number;
}

export interface SseFinal {
  type: "final";
  clients: number;
  events: number;
  /** Seqs a client skipped (should be 0: a cut-off client resumes with Last-Event-ID). */
  gaps: number;
  duplicates: number;
  reconnects: number;
  minLastSeq: number;
  maxLastSeq: number;
  cores: number;
}
