// REMOTE mode: while the local API is away, the feed follows Supabase by
// polling (always, as the safety net) and, when asked, Realtime. Started and
// stopped by the local link; answers from a stopped loop are ignored.
import type { FeedStore } from "./feed-store.ts";
import type { RemoteReader, RemoteSubscription } from "./remote.ts";
import type { Mode, Timers, StoredEvent } from "./types.ts";

export interface RemoteFeedOptions {
  mode: Mode;
  /** Supabase access; null: REMOTE shows an error instead of data. */
  remote: RemoteReader | null;
  realtime: boolean;
  pollIntervalMs: number;
  maxEvents: number;
  feed: FeedStore;
  timers: Timers;
  now: () => number;
}

export interface RemoteFeed {
  /** Starts polling (and Realtime); no-op while running. */
  start(): void;
  stop(): void;
}

export function createRemoteFeed(options: RemoteFeedOptions): RemoteFeed {
  const { mode, remote, feed, timers } = options;
  const status = feed.data.remote;
  let pollTimer: unknown = null;
  let subscription: RemoteSubscription | null = null;
  // Bumped when the loop stops, so a poll or Realtime callback of the old one is ignored.
  let epoch = 0;
  let active = false;

  async function poll(at: number) {
    pollTimer = null;
    if (!remote) return;
    try {
      const [evs, important, h, s] = await Promise.all([
        remote.events(mode, feed.data.lastSeq, options.maxEvents),
        // The newest window may be all ticks: the fills and kill switches are asked for apart.
        remote.importantEvents ? remote.importantEvents(mode, options.maxEvents) : [],
        remote.health(mode),
        remote.state(mode),
      ]);
      if (at !== epoch || feed.closed) return;
      feed.addEvents(evs);
      feed.addEvents(important);
      if (h) feed.data.health = h;
      if (s) feed.data.state = s;
      status.lastPollAt = options.now();
      status.error = null;
    } catch (error) {
      if (at !== epoch || feed.closed) return;
      status.error = error instanceof Error ? error.message : String(error);
    }
    pollTimer = timers.setTimeout(() => void poll(at), options.pollIntervalMs);
    feed.changed();
  }

  /** Realtime events and channel status, for the loop started as `at`. */
  const onEvent = (at: number) => (e: StoredEvent) => {
    if (at === epoch) feed.addEvents([e]);
  };
  const onStatus = (at: number) => (s: "subscribed" | "failed", detail?: string) => {
    if (at !== epoch) return;
    status.via = s === "subscribed" ? "realtime" : "polling";
    if (s === "subscribed") status.realtimeError = null;
    if (s === "failed") {
      subscription?.unsubscribe();
      subscription = null;
      status.realtimeError = `Realtime unavailable (${detail ?? "failed"}); polling`;
    }
    feed.changed();
  };

  return {
    start() {
      if (active || feed.closed) return;
      active = true;
      const at = ++epoch;
      if (!remote) {
        status.error = "Supabase is not configured";
        return;
      }
      if (options.realtime && remote.subscribe) subscription = remote.subscribe(mode, onEvent(at), onStatus(at));
      void poll(at);
    },
    stop() {
      if (!active) return;
      active = false;
      epoch++;
      if (pollTimer !== null) timers.clearTimeout(pollTimer);
      pollTimer = null;
      subscription?.unsubscribe();
      subscription = null;
      status.via = "polling";
    },
  };
}
