// Types shared by the live feed, the hook and the page. Browser code: this
// tree imports no Bun or Node API and no server module, so a dashboard can
// vendor src/client/ as it is.

export type Mode = "paper" | "live";
export type Severity = "debug" | "info" | "warn" | "error" | "critical";

/** Least to most severe. */
export const SEVERITIES: readonly Severity[] = ["debug", "info", "warn", "error", "critical"];

/**
 * Subtypes a trader must never lose from view under a flood of ticks: the
 * service's critical subtypes (src/domain/events.ts CRITICAL_SUBTYPES; this
 * tree imports nothing from the service, a test keeps the two equal).
 */
export const IMPORTANT_SUBTYPES: readonly string[] = [
  "BUY_FILLED",
  "SELL_FILLED",
  "PNL_REALIZED",
  "TRADING_HALTED",
  "KILL_SWITCH",
  "RECONCILIATION_MISMATCH",
];

/**
 * One stored event as the local stream and Supabase's zoe_events both serve
 * it: the service's StoredEvent (components.schemas.StoredEvent in
 * /docs/json), under the same name.
 */
export interface StoredEvent {
  id: string;
  mode: Mode;
  seq: number;
  ts: string;
  source: string;
  type: string;
  subtype: string;
  symbol: string | null;
  severity: Severity;
  body: string;
  meta: Record<string, unknown>;
  idempotency_key?: string;
}

/** The bot's latest state snapshot (local /local/state or remote zoe_state). */
export interface FeedState {
  cash: unknown;
  holdings: unknown;
  positions: unknown;
  /** When the bot took the snapshot. */
  ts: string | null;
  /** Highest seq the source knew when it answered. */
  lastSeq: number | null;
  /** When the source vouched for these figures (ISO): the local answer's arrival, or zoe_state's updated_at. */
  asOf?: string | null;
}

/** How far the flush to Supabase has got, from whichever source answered last. */
export interface FlushHealth {
  /** Events not yet in Supabase (as of `source`'s knowledge). */
  backlog: number | null;
  lastFlushTs: string | null;
  lastFlushStatus: string | null;
  lastFlushError: string | null;
  lastBatchCount: number | null;
  /** Last moment Supabase is known to have had everything flushed so far. */
  syncedAt: string | null;
  /** False when the service says no remote is configured. */
  remoteConfigured: boolean | null;
  source: "local" | "remote";
  /** When the source vouched for these figures (ISO): the local answer's arrival, or zoe_health's updated_at. */
  asOf?: string | null;
}

export type FeedStatus = "connecting" | "local" | "remote" | "closed";

export interface RemoteStatus {
  /** A Supabase client was configured. */
  configured: boolean;
  /** How REMOTE mode follows Supabase: polling, or Realtime while subscribed. */
  via: "polling" | "realtime";
  pollIntervalMs: number;
  lastPollAt: number | null;
  /** The last Supabase read failed with this. */
  error: string | null;
  /** Realtime was asked for but could not subscribe (polling instead). */
  realtimeError: string | null;
}

export interface FeedSnapshot {
  mode: Mode;
  status: FeedStatus;
  /** True only while the local SSE stream is open. */
  isLocal: boolean;
  /** Ordered by seq ascending (oldest first), unique by seq, at most maxEvents. */
  events: readonly StoredEvent[];
  /**
   * The newest maxEvents important events (an IMPORTANT_SUBTYPES subtype, or
   * severity error or critical), ascending by seq, kept apart from `events` so
   * a flood of ticks never pushes a fill or a kill switch out; some may also
   * be in `events`.
   */
  important: readonly StoredEvent[];
  /** Highest seq seen from either source (0 before any). */
  lastSeq: number;
  state: FeedState | null;
  health: FlushHealth | null;
  remote: RemoteStatus;
  /** Why the local API is not in use (null while LOCAL LIVE). */
  localError: string | null;
  /** The local API refused the token (401): the page should ask for one. */
  unauthorized: boolean;
  /** Delay before the next local probe while REMOTE, for display. */
  nextProbeAt: number | null;
}

/** setTimeout/clearTimeout, injectable so tests drive time by hand. */
export interface Timers {
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}
