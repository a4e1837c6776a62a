// The live feed: local SSE first, Supabase when the local API is away, and
// back to local as soon as it answers again. Framework-agnostic: a store with
// subscribe/getSnapshot (what React's useSyncExternalStore wants), plus
// close(). Everything with a side effect (EventSource, fetch, timers, frame
// scheduling, Supabase) is injected so tests can drive it by hand.
import { type BackoffOptions, DEFAULT_BACKOFF, probeDelay } from "./backoff.ts";
import { createLinkWatchdog } from "./link-watchdog.ts";
import { mergeEvents, toEvent } from "./merge.ts";
import type { RemoteReader, RemoteSubscription } from "./remote.ts";
import type { FeedSnapshot, FeedState, FeedStatus, FlushHealth, Mode, RemoteStatus, ZoeEvent } from "./types.ts";

export interface EventSourceLike {
  onopen: ((event: Event) => void) | null;
  onmessage: ((event: MessageEvent) => void) | null;
  onerror: ((event: Event) => void) | null;
  /** Named events: `heartbeat` and `reset` (a real EventSource has it). */
  addEventListener?(type: string, listener: (event: MessageEvent) => void): void;
  close(): void;
}

export interface Timers {
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

export interface LiveFeedOptions {
  mode: Mode;
  /** Base URL of the local API; "" means the page's own origin. */
  localApiUrl?: string;
  /** Token for the local read endpoints, sent as ?token= (EventSource cannot set headers). */
  apiToken?: string | null;
  /** Supabase access for REMOTE mode; null shows REMOTE without data. */
  remote?: RemoteReader | null;
  /** Newest events kept (default 200). */
  maxEvents?: number;
  /** Supabase polling period while REMOTE (default 30 s). */
  pollIntervalMs?: number;
  /** Use Supabase Realtime while REMOTE (polling continues as a safety net). */
  realtime?: boolean;
  /** How long the local API gets to open the stream before the feed goes REMOTE (default 3 s). */
  connectTimeoutMs?: number;
  /** Backoff of local probes while REMOTE (default first 1 s, cap 15 s). */
  probe?: Partial<BackoffOptions>;
  probeTimeoutMs?: number;
  /** How often the state panel is refreshed from the local API while LOCAL (default 5 s). */
  stateRefreshMs?: number;
  /**
   * Silence on the local stream (no event, no heartbeat) after which the link
   * counts as hung and the feed goes REMOTE (default 3.5 s; never less than
   * 1.5 heartbeat intervals + 0.5 s of what the server says it sends).
   */
  linkTimeoutMs?: number;
  eventSource?: (url: string) => EventSourceLike;
  fetch?: (url: string, init?: { signal?: AbortSignal }) => Promise<Response>;
  timers?: Timers;
  now?: () => number;
  random?: () => number;
  /** Runs `fn` once soon; returns a cancel function. Default: next animation frame. */
  schedule?: (fn: () => void) => () => void;
}

export interface LiveFeed {
  readonly mode: Mode;
  getSnapshot(): FeedSnapshot;
  /** `listener` runs at most once per scheduled frame, however many events arrived. */
  subscribe(listener: () => void): () => void;
  /** Closes the stream, stops every timer and subscription. The feed is dead afterwards. */
  close(): void;
}

export const DEFAULT_LOCAL_API_URL = "http://localhost:8765";

const defaultTimers: Timers = {
  setTimeout: (fn, ms) => globalThis.setTimeout(fn, ms),
  clearTimeout: (h) => globalThis.clearTimeout(h as ReturnType<typeof setTimeout>),
};

function defaultSchedule(timers: Timers): (fn: () => void) => () => void {
  if (typeof globalThis.requestAnimationFrame === "function") {
    return (fn) => {
      const id = globalThis.requestAnimationFrame(() => fn());
      return () => globalThis.cancelAnimationFrame(id);
    };
  }
  return (fn) => {
    const h = timers.setTimeout(fn, 16);
    return () => timers.clearTimeout(h);
  };
}

const num = (v: unknown): number | null => (v === null || v === undefined || v === "" || !Number.isFinite(Number(v)) ? null : Number(v));
const str = (v: unknown): string | null => (typeof v === "string" && v !== "" ? v : null);

/** The `health` object of GET /local/state → FlushHealth. */
export function localHealth(h: Record<string, unknown>): FlushHealth {
  const lastFlushTs = str(h.last_flush_ts);
  const lastFlushStatus = str(h.last_flush_status);
  // The flusher reports its last successful flush; the flush log only the latest attempt.
  const okTs = str(h.last_success_at) ?? str(h.last_ok_flush_ts);
  return {
    backlog: num(h.backlog),
    lastFlushTs,
    lastFlushStatus,
    lastFlushError: str(h.last_flush_error),
    lastBatchCount: num(h.last_flush_count ?? h.last_batch_count),
    syncedAt: okTs ?? (lastFlushStatus === "ok" ? lastFlushTs : null),
    remoteConfigured: typeof h.remote_configured === "boolean" ? h.remote_configured : null,
    source: "local",
  };
}

/** GET /local/state → FeedState. */
export function localState(body: Record<string, unknown>): FeedState {
  return { cash: body.cash ?? null, holdings: body.holdings ?? null, positions: body.positions ?? null, ts: str(body.state_ts), lastSeq: num(body.last_seq) };
}

// No parameter properties in src/client: dashboards vendor it under Vite's default erasableSyntaxOnly.
class LocalRefused extends Error {
  readonly status: number;
  constructor(status: number) {
    super(status === 401 ? "the local API refused the token (401)" : `the local API answered ${status}`);
    this.status = status;
  }
}

function parseData(message: MessageEvent): unknown {
  try {
    return JSON.parse(String(message.data));
  } catch {
    return null;
  }
}

export function createLiveFeed(options: LiveFeedOptions): LiveFeed {
  const mode = options.mode;
  const base = (options.localApiUrl ?? DEFAULT_LOCAL_API_URL).replace(/\/+$/, "");
  const maxEvents = options.maxEvents ?? 200;
  const pollIntervalMs = options.pollIntervalMs ?? 30_000;
  const connectTimeoutMs = options.connectTimeoutMs ?? 3_000;
  const probeTimeoutMs = options.probeTimeoutMs ?? 3_000;
  const stateRefreshMs = options.stateRefreshMs ?? 5_000;
  const linkTimeoutMs = options.linkTimeoutMs ?? 3_500;
  const backoff: BackoffOptions = { ...DEFAULT_BACKOFF, ...options.probe };
  const timers = options.timers ?? defaultTimers;
  const now = options.now ?? (() => Date.now());
  const doFetch = options.fetch ?? ((url, init) => globalThis.fetch(url, init));
  const openEventSource = options.eventSource ?? ((url) => new EventSource(url));
  const schedule = options.schedule ?? defaultSchedule(timers);
  const remote = options.remote ?? null;

  let status: FeedStatus = "connecting";
  const events: ZoeEvent[] = [];
  let lastSeq = 0;
  let state: FeedState | null = null;
  let health: FlushHealth | null = null;
  const remoteStatus: RemoteStatus = { configured: remote !== null, via: "polling", pollIntervalMs, lastPollAt: null, error: null, realtimeError: null };
  let localError: string | null = null;
  let unauthorized = false;
  let nextProbeAt: number | null = null;

  let stream: EventSourceLike | null = null;
  let localAbort: AbortController | null = null;
  let connectTimer: unknown = null;
  let refreshTimer: unknown = null;
  // Aborts a probe or state refresh that takes too long.
  let requestTimer: unknown = null;
  let probeTimer: unknown = null;
  let pollTimer: unknown = null;
  let subscription: RemoteSubscription | null = null;
  // Bumped whenever a local attempt or the remote loop is superseded, so late
  // answers from an abandoned attempt are ignored.
  let localEpoch = 0;
  let remoteEpoch = 0;
  let remoteActive = false;
  let probeAttempt = 0;
  let closed = false;
  // Armed by the stream's first heartbeat (an older server sends none); fed by
  // every event, heartbeat and answered state probe.
  const watchdog = createLinkWatchdog({
    timers,
    now,
    silenceMs: linkTimeoutMs,
    onSilent: (ms) => localFailed(`the local stream went silent for ${Math.round(ms / 100) / 10} s (no event, no heartbeat): the link is hung`),
  });

  const listeners = new Set<() => void>();
  let snapshot: FeedSnapshot | null = null;
  let cancelNotify: (() => void) | null = null;

  const changed = () => {
    snapshot = null;
    if (closed || cancelNotify || listeners.size === 0) return;
    cancelNotify = schedule(() => {
      cancelNotify = null;
      for (const l of [...listeners]) l();
    });
  };

  const clear = (h: unknown) => {
    if (h !== null) timers.clearTimeout(h);
    return null;
  };

  const addEvents = (incoming: readonly ZoeEvent[]) => {
    if (incoming.length === 0) return;
    mergeEvents(events, incoming, mode, maxEvents);
    const newest = events.at(-1)?.seq ?? 0;
    if (newest > lastSeq) lastSeq = newest;
    changed();
  };

  const withToken = (path: string) => {
    const url = `${base}${path}`;
    return options.apiToken ? `${url}&token=${encodeURIComponent(options.apiToken)}` : url;
  };

  async function fetchLocalState(signal: AbortSignal): Promise<Record<string, unknown>> {
    const res = await doFetch(withToken(`/local/state?mode=${mode}`), { signal });
    if (!res.ok) throw new LocalRefused(res.status);
    return (await res.json()) as Record<string, unknown>;
  }

  const applyLocalState = (body: Record<string, unknown>) => {
    state = localState(body);
    if (body.health && typeof body.health === "object") health = localHealth(body.health as Record<string, unknown>);
    unauthorized = false;
    changed();
  };

  /** Ends the current local attempt or stream without deciding what comes next. */
  function dropLocal() {
    localEpoch++;
    if (stream) {
      stream.onopen = stream.onmessage = stream.onerror = null;
      stream.close();
      stream = null;
    }
    localAbort?.abort();
    localAbort = null;
    watchdog.stop();
    connectTimer = clear(connectTimer);
    refreshTimer = clear(refreshTimer);
    requestTimer = clear(requestTimer);
  }

  function describe(error: unknown): string {
    if (error instanceof LocalRefused) return error.message;
    return `the local API is unreachable (${error instanceof Error ? error.message : String(error)})`;
  }

  async function connectLocal(prefetched: Record<string, unknown> | null) {
    dropLocal();
    const epoch = localEpoch;
    const abort = (localAbort = new AbortController());
    connectTimer = timers.setTimeout(() => {
      connectTimer = null;
      if (epoch === localEpoch) localFailed(`the local API did not open the stream within ${connectTimeoutMs} ms`);
    }, connectTimeoutMs);
    let body = prefetched;
    if (!body) {
      try {
        body = await fetchLocalState(abort.signal);
      } catch (error) {
        if (epoch !== localEpoch || closed) return;
        if (error instanceof LocalRefused && error.status === 401) unauthorized = true;
        localFailed(describe(error));
        return;
      }
      if (epoch !== localEpoch || closed) return;
    }
    applyLocalState(body);
    // Resume after what we have; after a long absence only the newest window.
    const head = num(body.last_seq) ?? 0;
    const from = Math.max(lastSeq, head - maxEvents, 0);
    const source = openEventSource(withToken(`/local/stream?mode=${mode}&last_event_id=${from}&heartbeat=event`));
    stream = source;
    source.onopen = () => {
      if (stream !== source) return;
      watchdog.alive();
      connectTimer = clear(connectTimer);
      status = "local";
      localError = null;
      probeAttempt = 0;
      nextProbeAt = null;
      stopRemote();
      scheduleRefresh(epoch);
      changed();
    };
    source.onmessage = (message) => {
      if (stream !== source) return;
      watchdog.alive();
      let parsed: unknown;
      try {
        parsed = JSON.parse(String(message.data));
      } catch {
        return;
      }
      const e = toEvent(parsed);
      if (e) addEvents([e]);
    };
    source.addEventListener?.("heartbeat", (message) => {
      if (stream !== source) return;
      const interval = num((parseData(message) as { interval_ms?: unknown } | null)?.interval_ms);
      watchdog.alive();
      watchdog.arm(Math.max(linkTimeoutMs, interval === null ? 0 : 1.5 * interval + 500));
    });
    source.addEventListener?.("reset", (message) => {
      if (stream !== source) return;
      watchdog.alive();
      const newest = num((parseData(message) as { newest_seq?: unknown } | null)?.newest_seq) ?? 0;
      resync(newest);
    });
    source.onerror = () => {
      if (stream !== source) return;
      // A browser would retry by itself, but a non-200 answer ends an
      // EventSource for good: the feed owns every reconnect instead.
      localFailed(status === "local" ? "the local stream closed" : "the local stream could not open");
    };
  }

  /**
   * The stream says our position is not in the local database (restored or
   * replaced): what we hold past `newest` does not exist there. Start over
   * from the newest state and events, as on first load.
   */
  function resync(newest: number) {
    events.length = 0;
    lastSeq = 0;
    localError = `the local database restarted its seqs (newest ${newest}): reloaded`;
    changed();
    void connectLocal(null);
  }

  function scheduleRefresh(epoch: number) {
    refreshTimer = timers.setTimeout(async () => {
      refreshTimer = null;
      if (epoch !== localEpoch || closed) return;
      const abort = (localAbort = new AbortController());
      let timedOut = false;
      const startedAt = now();
      requestTimer = timers.setTimeout(() => {
        timedOut = true;
        abort.abort();
      }, probeTimeoutMs);
      try {
        const body = await fetchLocalState(abort.signal);
        if (epoch === localEpoch && !closed) {
          watchdog.alive();
          applyLocalState(body);
        }
      } catch {
        // A probe that got no answer while the stream, too, stayed silent all
        // along is a hung link; otherwise the stream decides.
        if (epoch === localEpoch && !closed && timedOut && watchdog.lastAliveAt < startedAt) {
          localFailed(`the local API did not answer within ${probeTimeoutMs} ms and the stream was silent: the link is hung`);
          return;
        }
      }
      if (epoch !== localEpoch || closed) return;
      requestTimer = clear(requestTimer);
      scheduleRefresh(epoch);
    }, stateRefreshMs);
  }

  function localFailed(reason: string) {
    if (closed) return;
    dropLocal();
    status = "remote";
    localError = reason;
    startRemote();
    scheduleProbe();
    changed();
  }

  function scheduleProbe() {
    probeTimer = clear(probeTimer);
    const delay = probeDelay(probeAttempt++, backoff, options.random);
    nextProbeAt = now() + delay;
    probeTimer = timers.setTimeout(() => {
      probeTimer = null;
      void probe();
    }, delay);
  }

  async function probe() {
    dropLocal();
    const epoch = localEpoch;
    const abort = (localAbort = new AbortController());
    requestTimer = timers.setTimeout(() => abort.abort(), probeTimeoutMs);
    let body: Record<string, unknown>;
    try {
      body = await fetchLocalState(abort.signal);
    } catch (error) {
      if (epoch !== localEpoch || closed) return;
      requestTimer = clear(requestTimer);
      unauthorized = error instanceof LocalRefused && error.status === 401;
      localError = describe(error);
      scheduleProbe();
      changed();
      return;
    }
    if (epoch !== localEpoch || closed) return;
    requestTimer = clear(requestTimer);
    nextProbeAt = null;
    void connectLocal(body);
  }

  function startRemote() {
    if (remoteActive || closed) return;
    remoteActive = true;
    const epoch = ++remoteEpoch;
    if (!remote) {
      remoteStatus.error = "Supabase is not configured";
      return;
    }
    if (options.realtime && remote.subscribe) {
      subscription = remote.subscribe(
        mode,
        (e) => {
          if (epoch === remoteEpoch) addEvents([e]);
        },
        (s, detail) => {
          if (epoch !== remoteEpoch) return;
          remoteStatus.via = s === "subscribed" ? "realtime" : "polling";
          if (s === "subscribed") remoteStatus.realtimeError = null;
          if (s === "failed") {
            subscription?.unsubscribe();
            subscription = null;
            remoteStatus.realtimeError = `Realtime unavailable (${detail ?? "failed"}); polling`;
          }
          changed();
        },
      );
    }
    void poll(epoch);
  }

  async function poll(epoch: number) {
    pollTimer = null;
    if (!remote) return;
    try {
      const [evs, h, s] = await Promise.all([remote.events(mode, lastSeq, maxEvents), remote.health(mode), remote.state(mode)]);
      if (epoch !== remoteEpoch || closed) return;
      addEvents(evs);
      if (h) health = h;
      if (s) state = s;
      remoteStatus.lastPollAt = now();
      remoteStatus.error = null;
    } catch (error) {
      if (epoch !== remoteEpoch || closed) return;
      remoteStatus.error = error instanceof Error ? error.message : String(error);
    }
    pollTimer = timers.setTimeout(() => void poll(epoch), pollIntervalMs);
    changed();
  }

  function stopRemote() {
    if (!remoteActive) return;
    remoteActive = false;
    remoteEpoch++;
    pollTimer = clear(pollTimer);
    subscription?.unsubscribe();
    subscription = null;
    remoteStatus.via = "polling";
  }

  void connectLocal(null);

  return {
    mode,
    getSnapshot() {
      snapshot ??= {
        mode,
        status,
        isLocal: status === "local",
        events: events.slice(),
        lastSeq,
        state,
        health,
        remote: { ...remoteStatus },
        localError,
        unauthorized,
        nextProbeAt,
      };
      return snapshot;
    },
    subscribe(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    close() {
      if (closed) return;
      closed = true;
      dropLocal();
      probeTimer = clear(probeTimer);
      stopRemote();
      cancelNotify?.();
      cancelNotify = null;
      listeners.clear();
      status = "closed";
      snapshot = null;
    },
  };
}
