// The local side of the live feed: fetch the state, open the SSE stream from
// where the feed is, refresh the state panel while LOCAL, and on any failure
// (stream error, no open in time, a hung link) go REMOTE and probe the local
// API with backoff until it answers, then reconnect. Every attempt has an
// epoch: answers and callbacks of a superseded attempt are ignored.
import { type BackoffOptions, probeDelay } from "./backoff.ts";
import type { FeedStore } from "./feed-store.ts";
import { createLinkWatchdog } from "./link-watchdog.ts";
import { describeLocalError, type LocalApi, LocalRefused, localHealth, localState, num, parseData } from "./local-api.ts";
import { toEvent } from "./merge.ts";
import type { RemoteFeed } from "./remote-feed.ts";
import type { Timers } from "./types.ts";

export interface EventSourceLike {
  onopen: ((event: Event) => void) | null;
  onmessage: ((event: MessageEvent) => void) | null;
  onerror: ((event: Event) => void) | null;
  /** Named events: `heartbeat` and `reset` (a real EventSource has it). */
  addEventListener?(type: string, listener: (event: MessageEvent) => void): void;
  close(): void;
}

export interface LocalLinkOptions {
  api: LocalApi;
  feed: FeedStore;
  /** Followed while the local API is away. */
  remote: RemoteFeed;
  /** Newest events replayed after a long absence. */
  maxEvents: number;
  connectTimeoutMs: number;
  probeTimeoutMs: number;
  stateRefreshMs: number;
  /** Least silence on the stream that counts as a hung link. */
  linkTimeoutMs: number;
  backoff: BackoffOptions;
  eventSource: (url: string) => EventSourceLike;
  timers: Timers;
  now: () => number;
  random?: () => number;
}

export interface LocalLink {
  /** Starts the first attempt. */
  connect(): void;
  /** Closes the stream and stops every local timer. */
  close(): void;
}

export function createLocalLink(options: LocalLinkOptions): LocalLink {
  const { api, feed, remote, timers, now } = options;
  const data = feed.data;
  let stream: EventSourceLike | null = null;
  let localAbort: AbortController | null = null;
  let connectTimer: unknown = null;
  let refreshTimer: unknown = null;
  // Aborts a probe or state refresh that takes too long.
  let requestTimer: unknown = null;
  let probeTimer: unknown = null;
  // Bumped whenever a local attempt is superseded, so late answers from an abandoned attempt are ignored.
  let epoch = 0;
  let probeAttempt = 0;
  // Armed by the stream's first heartbeat (an older server sends none); fed by
  // every event, heartbeat and answered state probe.
  const watchdog = createLinkWatchdog({
    timers,
    now,
    silenceMs: options.linkTimeoutMs,
    onSilent: (ms) => failed(`the local stream went silent for ${Math.round(ms / 100) / 10} s (no event, no heartbeat): the link is hung`),
  });

  const clear = (h: unknown) => {
    if (h !== null) timers.clearTimeout(h);
    return null;
  };
  const current = (at: number) => at === epoch && !feed.closed;

  const applyState = (body: Record<string, unknown>) => {
    data.state = localState(body);
    if (body.health && typeof body.health === "object") data.health = localHealth(body.health as Record<string, unknown>);
    data.unauthorized = false;
    feed.changed();
  };

  /** Ends the current local attempt or stream without deciding what comes next. */
  function drop() {
    epoch++;
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

  async function connect(prefetched: Record<string, unknown> | null) {
    drop();
    const at = epoch;
    const abort = (localAbort = new AbortController());
    connectTimer = timers.setTimeout(() => {
      connectTimer = null;
      if (at === epoch) failed(`the local API did not open the stream within ${options.connectTimeoutMs} ms`);
    }, options.connectTimeoutMs);
    let body = prefetched;
    if (!body) {
      try {
        body = await api.fetchState(abort.signal);
      } catch (error) {
        if (!current(at)) return;
        if (error instanceof LocalRefused && error.status === 401) data.unauthorized = true;
        failed(describeLocalError(error));
        return;
      }
      if (!current(at)) return;
    }
    applyState(body);
    // Resume after what we have; after a long absence only the newest window.
    const head = num(body.last_seq) ?? 0;
    const from = Math.max(data.lastSeq, head - options.maxEvents, 0);
    watch(options.eventSource(api.streamUrl(from)), at);
  }

  /** Follows `source` for attempt `at`: opening makes the feed LOCAL, anything it delivers proves the link. */
  function watch(source: EventSourceLike, at: number) {
    stream = source;
    source.onopen = () => {
      if (stream !== source) return;
      watchdog.alive();
      connectTimer = clear(connectTimer);
      data.status = "local";
      data.localError = null;
      probeAttempt = 0;
      data.nextProbeAt = null;
      remote.stop();
      scheduleRefresh(at);
      feed.changed();
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
      if (e) feed.addEvents([e]);
    };
    source.addEventListener?.("heartbeat", (message) => {
      if (stream !== source) return;
      const interval = num((parseData(message) as { interval_ms?: unknown } | null)?.interval_ms);
      watchdog.alive();
      watchdog.arm(Math.max(options.linkTimeoutMs, interval === null ? 0 : 1.5 * interval + 500));
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
      failed(data.status === "local" ? "the local stream closed" : "the local stream could not open");
    };
  }

  /**
   * The stream says our position is not in the local database (restored or
   * replaced): what we hold past `newest` does not exist there. Start over
   * from the newest state and events, as on first load.
   */
  function resync(newest: number) {
    feed.clearEvents();
    data.localError = `the local database restarted its seqs (newest ${newest}): reloaded`;
    feed.changed();
    void connect(null);
  }

  function scheduleRefresh(at: number) {
    refreshTimer = timers.setTimeout(async () => {
      refreshTimer = null;
      if (!current(at)) return;
      const abort = (localAbort = new AbortController());
      let timedOut = false;
      const startedAt = now();
      requestTimer = timers.setTimeout(() => {
        timedOut = true;
        abort.abort();
      }, options.probeTimeoutMs);
      try {
        const body = await api.fetchState(abort.signal);
        if (current(at)) {
          watchdog.alive();
          applyState(body);
        }
      } catch {
        // A probe that got no answer while the stream, too, stayed silent all
        // along is a hung link; otherwise the stream decides.
        if (current(at) && timedOut && watchdog.lastAliveAt < startedAt) {
          failed(`the local API did not answer within ${options.probeTimeoutMs} ms and the stream was silent: the link is hung`);
          return;
        }
      }
      if (!current(at)) return;
      requestTimer = clear(requestTimer);
      scheduleRefresh(at);
    }, options.stateRefreshMs);
  }

  function failed(reason: string) {
    if (feed.closed) return;
    drop();
    data.status = "remote";
    data.localError = reason;
    remote.start();
    scheduleProbe();
    feed.changed();
  }

  function scheduleProbe() {
    probeTimer = clear(probeTimer);
    const delay = probeDelay(probeAttempt++, options.backoff, options.random);
    data.nextProbeAt = now() + delay;
    probeTimer = timers.setTimeout(() => {
      probeTimer = null;
      void probe();
    }, delay);
  }

  async function probe() {
    drop();
    const at = epoch;
    const abort = (localAbort = new AbortController());
    requestTimer = timers.setTimeout(() => abort.abort(), options.probeTimeoutMs);
    let body: Record<string, unknown>;
    try {
      body = await api.fetchState(abort.signal);
    } catch (error) {
      if (!current(at)) return;
      requestTimer = clear(requestTimer);
      data.unauthorized = error instanceof LocalRefused && error.status === 401;
      data.localError = describeLocalError(error);
      scheduleProbe();
      feed.changed();
      return;
    }
    if (!current(at)) return;
    requestTimer = clear(requestTimer);
    data.nextProbeAt = null;
    void connect(body);
  }

  return {
    connect: () => void connect(null),
    close() {
      drop();
      probeTimer = clear(probeTimer);
    },
  };
}
