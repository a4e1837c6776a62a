// The live feed: local SSE first, Supabase when the local API is away, and
// back to local as soon as it answers again. Framework-agnostic: a store with
// subscribe/getSnapshot (what React's useSyncExternalStore wants), plus
// close(). Everything with a side effect (EventSource, fetch, timers, frame
// scheduling, Supabase) is injected so tests can drive it by hand.
//
// The parts: feed-store.ts (what the page sees, batched notifications),
// local-link.ts (stream, state refresh, hung-link watchdog, probes),
// local-api.ts (the local API's URLs and answers), remote-feed.ts (Supabase
// polling and Realtime while REMOTE).
import { type BackoffOptions, DEFAULT_BACKOFF } from "./backoff.ts";
import { createFeedStore, defaultSchedule } from "./feed-store.ts";
import { createLocalApi, DEFAULT_LOCAL_API_URL } from "./local-api.ts";
import { createLocalLink, type EventSourceLike } from "./local-link.ts";
import type { RemoteReader } from "./remote.ts";
import { createRemoteFeed } from "./remote-feed.ts";
import type { FeedSnapshot, Mode, Timers } from "./types.ts";

export { DEFAULT_LOCAL_API_URL, localHealth, localState } from "./local-api.ts";
export type { EventSourceLike } from "./local-link.ts";
export type { Timers } from "./types.ts";

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

const defaultTimers: Timers = {
  setTimeout: (fn, ms) => globalThis.setTimeout(fn, ms),
  clearTimeout: (h) => globalThis.clearTimeout(h as ReturnType<typeof setTimeout>),
};

export function createLiveFeed(options: LiveFeedOptions): LiveFeed {
  const mode = options.mode;
  const maxEvents = options.maxEvents ?? 200;
  const pollIntervalMs = options.pollIntervalMs ?? 30_000;
  const timers = options.timers ?? defaultTimers;
  const now = options.now ?? (() => Date.now());
  const remoteReader = options.remote ?? null;

  const feed = createFeedStore({
    mode,
    maxEvents,
    schedule: options.schedule ?? defaultSchedule(timers),
    remote: {
      configured: remoteReader !== null,
      via: "polling",
      pollIntervalMs,
      lastPollAt: null,
      error: null,
      realtimeError: null,
    },
  });
  const remote = createRemoteFeed({
    mode,
    remote: remoteReader,
    realtime: options.realtime ?? false,
    pollIntervalMs,
    maxEvents,
    feed,
    timers,
    now,
  });
  const local = createLocalLink({
    api: createLocalApi({
      mode,
      baseUrl: options.localApiUrl ?? DEFAULT_LOCAL_API_URL,
      apiToken: options.apiToken ?? null,
      fetch: options.fetch ?? ((url, init) => globalThis.fetch(url, init)),
    }),
    feed,
    remote,
    maxEvents,
    connectTimeoutMs: options.connectTimeoutMs ?? 3_000,
    probeTimeoutMs: options.probeTimeoutMs ?? 3_000,
    stateRefreshMs: options.stateRefreshMs ?? 5_000,
    linkTimeoutMs: options.linkTimeoutMs ?? 3_500,
    backoff: { ...DEFAULT_BACKOFF, ...options.probe },
    eventSource: options.eventSource ?? ((url) => new EventSource(url)),
    timers,
    now,
    random: options.random,
  });

  local.connect();

  return {
    mode,
    getSnapshot: () => feed.snapshot(),
    subscribe: (listener) => feed.subscribe(listener),
    close() {
      feed.close(() => {
        local.close();
        remote.stop();
      });
    },
  };
}
