// The local side of the live feed: fetch the state, open the SSE stream from
// where the feed is, refresh the state panel while LOCAL, and on any failure
// (stream error, no open in time, a hung link) go REMOTE and probe the local
// API with backoff until it answers, then reconnect. Every attempt has an
// epoch: answers and callbacks of a superseded attempt are ignored.
import { type BackoffOptions, probeDelay } from "./backoff.ts";
import type { FeedStore } from "./feed-store.ts";
import { createLinkWatchdog } from "./link-watchdog.ts";
import {
  describeLocalError,
  type LocalApi,
  LocalRefused,
  localHealth,
  localState,
  num,
  parseData,
} from "./local-api.ts";
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

/**
 * One link's state (the stream, its timers, the attempt epoch) and the steps
 * that move it: connect, watch the stream, refresh the state, fail over to
 * the remote, probe with backoff until the local API answers again.
 */
class LocalLinkImpl implements LocalLink {
  private stream: EventSourceLike | null = null;
  private localAbort: AbortController | null = null;
  private connectTimer: unknown = null;
  private refreshTimer: unknown = null;
  /** Aborts a probe or state refresh that takes too long. */
  private requestTimer: unknown = null;
  private probeTimer: unknown = null;
  /** The important-events fetch of the current attempt: aborted with it, or after probeTimeoutMs. */
  private importantAbort: AbortController | null = null;
  /** Bumped whenever a local attempt is superseded, so late answers from an abandoned attempt are ignored. */
  private epoch = 0;
  private probeAttempt = 0;
  /**
   * Armed by the stream's first heartbeat (an older server sends none); fed by
   * every event, heartbeat and answered state probe.
   */
  private readonly watchdog: ReturnType<typeof createLinkWatchdog>;

  private readonly o: LocalLinkOptions;

  constructor(o: LocalLinkOptions) {
    this.o = o;
    this.watchdog = createLinkWatchdog({
      timers: o.timers,
      now: o.now,
      silenceMs: o.linkTimeoutMs,
      onSilent: (ms) =>
        this.failed(
          `the local stream went silent for ${Math.round(ms / 100) / 10} s (no event, no heartbeat): the link is hung`,
        ),
    });
  }

  private get data() {
    return this.o.feed.data;
  }

  connect(): void {
    void this.open(null);
  }

  close(): void {
    this.drop();
    this.probeTimer = this.clear(this.probeTimer);
  }

  private clear(h: unknown): null {
    if (h !== null) this.o.timers.clearTimeout(h);
    return null;
  }

  private current(at: number): boolean {
    return at === this.epoch && !this.o.feed.closed;
  }

  private applyState(body: Record<string, unknown>): void {
    const data = this.data;
    // Kept on screen after the service goes away, so they carry when they were true.
    const asOf = new Date(this.o.now()).toISOString();
    data.state = { ...localState(body), asOf };
    if (body.health && typeof body.health === "object")
      data.health = { ...localHealth(body.health as Record<string, unknown>), asOf };
    data.unauthorized = false;
    this.o.feed.changed();
  }

  /** Ends the current local attempt or stream without deciding what comes next. */
  private drop(): void {
    this.epoch++;
    if (this.stream) {
      this.stream.onopen = this.stream.onmessage = this.stream.onerror = null;
      this.stream.close();
      this.stream = null;
    }
    this.localAbort?.abort();
    this.localAbort = null;
    this.importantAbort?.abort();
    this.importantAbort = null;
    this.watchdog.stop();
    this.connectTimer = this.clear(this.connectTimer);
    this.refreshTimer = this.clear(this.refreshTimer);
    this.requestTimer = this.clear(this.requestTimer);
  }

  private async open(prefetched: Record<string, unknown> | null): Promise<void> {
    const { api, timers, connectTimeoutMs } = this.o;
    this.drop();
    const at = this.epoch;
    const abort = (this.localAbort = new AbortController());
    this.connectTimer = timers.setTimeout(() => {
      this.connectTimer = null;
      if (at === this.epoch) this.failed(`the local API did not open the stream within ${connectTimeoutMs} ms`);
    }, connectTimeoutMs);
    let body = prefetched;
    if (!body) {
      try {
        body = await api.fetchState(abort.signal);
      } catch (error) {
        if (!this.current(at)) return;
        if (error instanceof LocalRefused && error.status === 401) this.data.unauthorized = true;
        this.failed(describeLocalError(error));
        return;
      }
      if (!this.current(at)) return;
    }
    this.applyState(body);
    // Resume after what we have; after a long absence only the newest window.
    const head = num(body.last_seq) ?? 0;
    let from = Math.max(this.data.lastSeq, head - this.o.maxEvents, 0);
    // Within this start's seq range seqs are gapless, so the window is head - maxEvents;
    // when it reaches below the range's start (a restart, a rebuilt store) the
    // store says where the newest maxEvents events begin.
    const rangeStart = num(
      (body.health as { store?: { seq_range?: { start_seq?: unknown } } } | undefined)?.store?.seq_range?.start_seq,
    );
    if (api.fetchWindowStart && rangeStart !== null && from > this.data.lastSeq && from < rangeStart) {
      try {
        from = Math.max(this.data.lastSeq, await api.fetchWindowStart(this.o.maxEvents, abort.signal));
      } catch (error) {
        if (!this.current(at)) return;
        this.failed(describeLocalError(error));
        return;
      }
      if (!this.current(at)) return;
    }
    this.watch(this.o.eventSource(api.streamUrl(from)), at);
    void this.loadImportant(at, from);
  }

  /**
   * The stream replays only what follows `upTo`, which may be all ticks: the
   * newest fills, kill switches and errors up to there are asked for apart
   * (REMOTE asks Supabase the same on every poll). Best effort: a service
   * without the filters answers 400, and the stream stands without them.
   */
  private async loadImportant(at: number, upTo: number): Promise<void> {
    if (upTo < 1) return;
    const { timers } = this.o;
    // Its own controller and deadline: a fetch left hanging by a frozen box would hold one of the
    // browser's few connections to it past every reconnect.
    const abort = (this.importantAbort = new AbortController());
    const deadline = timers.setTimeout(() => abort.abort(), this.o.probeTimeoutMs);
    let important: Awaited<ReturnType<LocalApi["importantEvents"]>>;
    try {
      important = await this.o.api.importantEvents(upTo, this.o.maxEvents, abort.signal);
    } catch {
      return;
    } finally {
      timers.clearTimeout(deadline);
      if (this.importantAbort === abort) this.importantAbort = null;
    }
    if (this.current(at)) this.o.feed.addEvents(important);
  }

  /** Follows `source` for attempt `at`: opening makes the feed LOCAL, anything it delivers proves the link. */
  private watch(source: EventSourceLike, at: number): void {
    const { feed } = this.o;
    const watchdog = this.watchdog;
    this.stream = source;
    source.onopen = () => {
      if (this.stream !== source) return;
      watchdog.alive();
      this.connectTimer = this.clear(this.connectTimer);
      this.data.status = "local";
      this.data.localError = null;
      this.probeAttempt = 0;
      this.data.nextProbeAt = null;
      this.o.remote.stop();
      this.scheduleRefresh(at);
      feed.changed();
    };
    source.onmessage = (message) => {
      if (this.stream !== source) return;
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
      if (this.stream !== source) return;
      const interval = num((parseData(message) as { interval_ms?: unknown } | null)?.interval_ms);
      watchdog.alive();
      watchdog.arm(Math.max(this.o.linkTimeoutMs, interval === null ? 0 : 1.5 * interval + 500));
    });
    source.addEventListener?.("reset", (message) => {
      if (this.stream !== source) return;
      watchdog.alive();
      const newest = num((parseData(message) as { newest_seq?: unknown } | null)?.newest_seq) ?? 0;
      this.resync(newest);
    });
    source.onerror = () => {
      if (this.stream !== source) return;
      // A browser would retry by itself, but a non-200 answer ends an
      // EventSource for good: the feed owns every reconnect instead.
      this.failed(this.data.status === "local" ? "the local stream closed" : "the local stream could not open");
    };
  }

  /**
   * The stream says our position is not in the local database (restored or
   * replaced): what we hold past `newest` does not exist there. Start over
   * from the newest state and events, as on first load.
   */
  private resync(newest: number): void {
    this.o.feed.clearEvents();
    this.data.localError = `the local database restarted its seqs (newest ${newest}): reloaded`;
    this.o.feed.changed();
    void this.open(null);
  }

  private scheduleRefresh(at: number): void {
    const { api, timers, probeTimeoutMs, now } = this.o;
    this.refreshTimer = timers.setTimeout(async () => {
      this.refreshTimer = null;
      if (!this.current(at)) return;
      const abort = (this.localAbort = new AbortController());
      let timedOut = false;
      const startedAt = now();
      this.requestTimer = timers.setTimeout(() => {
        timedOut = true;
        abort.abort();
      }, probeTimeoutMs);
      try {
        const body = await api.fetchState(abort.signal);
        if (this.current(at)) {
          this.watchdog.alive();
          this.applyState(body);
        }
      } catch {
        // A probe that got no answer while the stream, too, stayed silent all
        // along is a hung link; otherwise the stream decides.
        if (this.current(at) && timedOut && this.watchdog.lastAliveAt < startedAt) {
          this.failed(
            `the local API did not answer within ${probeTimeoutMs} ms and the stream was silent: the link is hung`,
          );
          return;
        }
      }
      if (!this.current(at)) return;
      this.requestTimer = this.clear(this.requestTimer);
      this.scheduleRefresh(at);
    }, this.o.stateRefreshMs);
  }

  private failed(reason: string): void {
    if (this.o.feed.closed) return;
    this.drop();
    this.data.status = "remote";
    this.data.localError = reason;
    this.o.remote.start();
    this.scheduleProbe();
    this.o.feed.changed();
  }

  private scheduleProbe(): void {
    this.probeTimer = this.clear(this.probeTimer);
    const delay = probeDelay(this.probeAttempt++, this.o.backoff, this.o.random);
    this.data.nextProbeAt = this.o.now() + delay;
    this.probeTimer = this.o.timers.setTimeout(() => {
      this.probeTimer = null;
      void this.probe();
    }, delay);
  }

  private async probe(): Promise<void> {
    this.drop();
    const at = this.epoch;
    const abort = (this.localAbort = new AbortController());
    this.requestTimer = this.o.timers.setTimeout(() => abort.abort(), this.o.probeTimeoutMs);
    let body: Record<string, unknown>;
    try {
      body = await this.o.api.fetchState(abort.signal);
    } catch (error) {
      if (!this.current(at)) return;
      this.requestTimer = this.clear(this.requestTimer);
      this.data.unauthorized = error instanceof LocalRefused && error.status === 401;
      this.data.localError = describeLocalError(error);
      this.scheduleProbe();
      this.o.feed.changed();
      return;
    }
    if (!this.current(at)) return;
    this.requestTimer = this.clear(this.requestTimer);
    this.data.nextProbeAt = null;
    void this.open(body);
  }
}

export function createLocalLink(options: LocalLinkOptions): LocalLink {
  return new LocalLinkImpl(options);
}
