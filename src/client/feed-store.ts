// What the live feed shows, in one place: the events (merged by seq, newest
// window kept), the state panel, flush health, where the data comes from, and
// why. The local link and the remote loop write it; the page reads immutable
// snapshots. Listeners run at most once per scheduled frame however many
// events arrived, so a burst of 1,000 events is one render.
import { isImportant, mergeEvents } from "./merge.ts";
import type {
  FeedSnapshot,
  FeedState,
  FeedStatus,
  FlushHealth,
  Mode,
  RemoteStatus,
  Timers,
  StoredEvent,
} from "./types.ts";

/** The feed's current values; the local link and the remote loop assign to them, then call changed(). */
export interface FeedData {
  status: FeedStatus;
  /** Highest seq seen from either source (0 before any). */
  lastSeq: number;
  state: FeedState | null;
  health: FlushHealth | null;
  readonly remote: RemoteStatus;
  localError: string | null;
  unauthorized: boolean;
  nextProbeAt: number | null;
}

export interface FeedStore {
  readonly data: FeedData;
  readonly closed: boolean;
  /** Merges events from either source (by seq, at most maxEvents kept, and as many important ones apart) and notifies. */
  addEvents(incoming: readonly StoredEvent[]): void;
  /** Forgets every event (the local database restarted its seqs). */
  clearEvents(): void;
  /** Something in `data` changed: a new snapshot, listeners notified on the next frame. */
  changed(): void;
  snapshot(): FeedSnapshot;
  subscribe(listener: () => void): () => void;
  /** Marks the feed closed, runs `teardown` (stream, timers), drops the listeners. */
  close(teardown: () => void): void;
}

export interface FeedStoreOptions {
  mode: Mode;
  maxEvents: number;
  remote: RemoteStatus;
  /** Runs `fn` once soon; returns a cancel function. */
  schedule: (fn: () => void) => () => void;
}

/** The next animation frame in a browser; 16 ms on `timers` elsewhere. */
export function defaultSchedule(timers: Timers): (fn: () => void) => () => void {
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

export function createFeedStore(options: FeedStoreOptions): FeedStore {
  const { mode, maxEvents, schedule } = options;
  const events: StoredEvent[] = [];
  const important: StoredEvent[] = [];
  const data: FeedData = {
    status: "connecting",
    lastSeq: 0,
    state: null,
    health: null,
    remote: options.remote,
    localError: null,
    unauthorized: false,
    nextProbeAt: null,
  };
  const listeners = new Set<() => void>();
  let snapshot: FeedSnapshot | null = null;
  let cancelNotify: (() => void) | null = null;
  let closed = false;

  const changed = () => {
    snapshot = null;
    if (closed || cancelNotify || listeners.size === 0) return;
    cancelNotify = schedule(() => {
      cancelNotify = null;
      for (const l of [...listeners]) l();
    });
  };

  return {
    data,
    get closed() {
      return closed;
    },
    addEvents(incoming) {
      if (incoming.length === 0) return;
      mergeEvents(events, incoming, mode, maxEvents);
      const kept = incoming.filter(isImportant);
      if (kept.length > 0) mergeEvents(important, kept, mode, maxEvents);
      const newest = events.at(-1)?.seq ?? 0;
      if (newest > data.lastSeq) data.lastSeq = newest;
      changed();
    },
    clearEvents() {
      events.length = 0;
      important.length = 0;
      data.lastSeq = 0;
    },
    changed,
    snapshot() {
      snapshot ??= {
        mode,
        status: data.status,
        isLocal: data.status === "local",
        events: events.slice(),
        important: important.slice(),
        lastSeq: data.lastSeq,
        state: data.state,
        health: data.health,
        remote: { ...data.remote },
        localError: data.localError,
        unauthorized: data.unauthorized,
        nextProbeAt: data.nextProbeAt,
      };
      return snapshot;
    },
    subscribe(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    close(teardown) {
      if (closed) return;
      closed = true;
      teardown();
      cancelNotify?.();
      cancelNotify = null;
      listeners.clear();
      data.status = "closed";
      snapshot = null;
    },
  };
}
