// The local API as the feed reads it: URLs with the read token (as ?token=:
// EventSource cannot set headers), GET /local/state, and its answer turned
// into the feed's types. Refusals and network failures become the one-line
// reasons the page shows.
import { toEvent, unionBySeq } from "./merge.ts";
import { type FeedState, type FlushHealth, IMPORTANT_SUBTYPES, type Mode, type StoredEvent } from "./types.ts";

export const DEFAULT_LOCAL_API_URL = "http://localhost:8765";

export const num = (v: unknown): number | null =>
  v === null || v === undefined || v === "" || !Number.isFinite(Number(v)) ? null : Number(v);
const str = (v: unknown): string | null => (typeof v === "string" && v !== "" ? v : null);

/** The `health` object of GET /local/state → FlushHealth. */
export function localHealth(h: Record<string, unknown>): FlushHealth {
  const lastFlushTs = str(h.last_flush_ts);
  const lastFlushStatus = str(h.last_flush_status);
  // The flusher reports its last successful flush; the flush log only the latest attempt.
  const okTs = str(h.last_success_at) ?? str(h.last_ok_flush_ts);
  return {
    backlog: num(h.backlog),
    // A success the flusher reports and the flush log does not show yet is still the last flush.
    lastFlushTs: lastFlushTs ?? okTs,
    lastFlushStatus: lastFlushStatus ?? (okTs ? "ok" : null),
    lastFlushError: str(h.last_flush_error),
    lastBatchCount: num(h.last_flush_count ?? h.last_batch_count),
    syncedAt: okTs ?? (lastFlushStatus === "ok" ? lastFlushTs : null),
    remoteConfigured: typeof h.remote_configured === "boolean" ? h.remote_configured : null,
    source: "local",
  };
}

/** GET /local/state → FeedState. */
export function localState(body: Record<string, unknown>): FeedState {
  return {
    cash: body.cash ?? null,
    holdings: body.holdings ?? null,
    positions: body.positions ?? null,
    ts: str(body.state_ts),
    lastSeq: num(body.last_seq),
  };
}

// No parameter properties in src/client: dashboards vendor it under Vite's default erasableSyntaxOnly.
export class LocalRefused extends Error {
  readonly status: number;
  constructor(status: number) {
    super(status === 401 ? "the local API refused the token (401)" : `the local API answered ${status}`);
    this.status = status;
  }
}

/** Why a request to the local API failed, for the page. */
export function describeLocalError(error: unknown): string {
  if (error instanceof LocalRefused) return error.message;
  return `the local API is unreachable (${error instanceof Error ? error.message : String(error)})`;
}

/** An SSE message's JSON data, or null. */
export function parseData(message: MessageEvent): unknown {
  try {
    return JSON.parse(String(message.data));
  } catch {
    return null;
  }
}

export interface LocalApiOptions {
  mode: Mode;
  /** Base URL of the local API; "" means the page's own origin. */
  baseUrl: string;
  apiToken: string | null;
  fetch: (url: string, init?: { signal?: AbortSignal }) => Promise<Response>;
}

export interface LocalApi {
  /** The stream of the mode after `from`, with heartbeats as named events. */
  streamUrl(from: number): string;
  /** GET /local/state of the mode; throws LocalRefused on a non-2xx answer. */
  fetchState(signal: AbortSignal): Promise<Record<string, unknown>>;
  /**
   * The position just before the newest `limit` stored events of the mode
   * (0 when it holds fewer): seqs jump forward between the store's ranges, so
   * this cannot be told from the newest seq alone. Throws LocalRefused on a non-2xx answer.
   */
  fetchWindowStart?(limit: number, signal: AbortSignal): Promise<number>;
  /**
   * The newest `limit` important events of the mode with seq <= upTo (an
   * IMPORTANT_SUBTYPES subtype, or severity error or critical), ascending:
   * two filtered GET /local/events, as the Supabase reader asks zoe_events.
   * Throws LocalRefused on a non-2xx answer.
   */
  importantEvents(upTo: number, limit: number, signal: AbortSignal): Promise<StoredEvent[]>;
}

export function createLocalApi(options: LocalApiOptions): LocalApi {
  const { mode } = options;
  const base = options.baseUrl.replace(/\/+$/, "");
  const withToken = (path: string) => {
    const url = `${base}${path}`;
    return options.apiToken ? `${url}&token=${encodeURIComponent(options.apiToken)}` : url;
  };
  const events = async (filter: string, upTo: number, limit: number, signal: AbortSignal) => {
    const url = withToken(`/local/events?mode=${mode}&${filter}&before_seq=${upTo + 1}&limit=${limit}`);
    const res = await options.fetch(url, { signal });
    if (!res.ok) throw new LocalRefused(res.status);
    const body: unknown = await res.json();
    return (Array.isArray(body) ? body : []).map(toEvent).filter((e): e is StoredEvent => e !== null);
  };
  return {
    async importantEvents(upTo, limit, signal) {
      const [bySubtype, bySeverity] = await Promise.all([
        events(`subtype=${IMPORTANT_SUBTYPES.map(encodeURIComponent).join(",")}`, upTo, limit, signal),
        events("severity=error", upTo, limit, signal),
      ]);
      return unionBySeq(bySubtype, bySeverity).slice(-limit);
    },
    streamUrl: (from) => withToken(`/local/stream?mode=${mode}&last_event_id=${from}&heartbeat=event`),
    async fetchState(signal) {
      const res = await options.fetch(withToken(`/local/state?mode=${mode}`), { signal });
      if (!res.ok) throw new LocalRefused(res.status);
      return (await res.json()) as Record<string, unknown>;
    },
    async fetchWindowStart(limit, signal) {
      const res = await options.fetch(withToken(`/local/events?mode=${mode}&limit=${limit}`), { signal });
      if (!res.ok) throw new LocalRefused(res.status);
      const events = (await res.json()) as { seq?: unknown }[];
      const first = Array.isArray(events) ? num(events[0]?.seq) : null;
      return first === null || events.length < limit ? 0 : first - 1;
    },
  };
}
