// React binding of the live feed: `useLocalLive(mode)` returns the seed's
// `{ isLocal, events, lastSeq }` plus state, flush health, the remote status
// and a ticking `syncedAgoS`. One feed per (mode, connection settings); a
// change tears the old one down before the new one starts. React is a peer
// dependency of this file only.
import { useEffect, useMemo, useRef, useState, useSyncExternalStore } from "react";
import { createLiveFeed, type LiveFeed, type LiveFeedOptions } from "./live-feed.ts";
import type { FeedSnapshot, Mode } from "./types.ts";

export interface UseLocalLiveOptions extends Omit<LiveFeedOptions, "mode"> {
  /** How often `syncedAgoS` is recomputed (default 1000 ms). */
  tickMs?: number;
}

export interface LocalLive extends FeedSnapshot {
  /** When Supabase last had everything flushed (ISO), if known. */
  syncedAt: string | null;
  /** Whole seconds since `syncedAt`, recomputed every tick; null if unknown. */
  syncedAgoS: number | null;
}

function emptySnapshot(mode: Mode, configured: boolean, pollIntervalMs: number): FeedSnapshot {
  return {
    mode,
    status: "connecting",
    isLocal: false,
    events: [],
    important: [],
    lastSeq: 0,
    state: null,
    health: null,
    remote: {
      configured,
      via: "polling",
      pollIntervalMs,
      lastPollAt: null,
      error: null,
      realtimeError: null,
    },
    localError: null,
    unauthorized: false,
    nextProbeAt: null,
  };
}

const noSubscribe = () => () => {};

export function useLocalLive(mode: Mode, options: UseLocalLiveOptions = {}): LocalLive {
  // Injected functions may be fresh closures each render; only the settings
  // below decide when the feed is rebuilt. The ref is written and read in
  // effects only (React's rules: never during render), the first effect first.
  const latest = useRef(options);
  useEffect(() => {
    latest.current = options;
  });
  const { localApiUrl, apiToken, remote, maxEvents, pollIntervalMs, realtime, tickMs = 1000 } = options;

  const [feed, setFeed] = useState<LiveFeed | null>(null);
  // biome-ignore lint/correctness/useExhaustiveDependencies: the listed options are the ones a new feed needs; the rest are read through latest
  useEffect(() => {
    const f = createLiveFeed({ ...latest.current, mode });
    setFeed(f);
    return () => f.close();
  }, [mode, localApiUrl, apiToken, remote, maxEvents, pollIntervalMs, realtime]);

  const empty = useMemo(
    () => emptySnapshot(mode, Boolean(remote), pollIntervalMs ?? 30_000),
    [mode, remote, pollIntervalMs],
  );
  const snap = useSyncExternalStore(feed ? feed.subscribe : noSubscribe, () =>
    feed && feed.mode === mode ? feed.getSnapshot() : empty,
  );
  // Between a mode change and the effect that swaps feeds, never show the old mode's events.
  const current = snap.mode === mode && snap.status !== "closed" ? snap : empty;

  const [nowMs, setNowMs] = useState(options.now ?? Date.now);
  useEffect(() => {
    const timers = latest.current.timers ?? {
      setTimeout: (fn: () => void, ms: number) => setTimeout(fn, ms),
      clearTimeout: (h: unknown) => clearTimeout(h as number),
    };
    let handle: unknown = null;
    const tick = () => {
      setNowMs((latest.current.now ?? Date.now)());
      handle = timers.setTimeout(tick, tickMs);
    };
    handle = timers.setTimeout(tick, tickMs);
    return () => timers.clearTimeout(handle);
  }, [tickMs]);

  const syncedAt = current.health?.syncedAt ?? null;
  const syncedMs = syncedAt ? Date.parse(syncedAt) : Number.NaN;
  const syncedAgoS = Number.isNaN(syncedMs) ? null : Math.max(0, Math.floor((nowMs - syncedMs) / 1000));
  return { ...current, syncedAt, syncedAgoS };
}
