// Ships unflushed events to the remote sink, one worker per mode. Each worker
// waits for its cadence (market clock), a critical event, or a full batch;
// then drains the queue batch by batch. A batch is retried by p-retry with
// capped, fully jittered exponential backoff; only events the remote
// acknowledged are marked flushed; poison events are quarantined so the queue
// never blocks. The store is only read and marked here: ingest never waits on
// the remote.
import pRetry from "p-retry";
import type { FlushSettings } from "../config.ts";
import type { Clock } from "../lib/clock.ts";
import { type Logger, silentLogger } from "../lib/log.ts";
import { createMarketClock, type MarketClock } from "./market-clock.ts";
import type { Quarantine, QuarantineInput } from "./quarantine.ts";
import { type Scheduler, systemScheduler } from "../lib/scheduler.ts";
import { checkStoredEvent, MODES, type Mode, type StoredEvent } from "../domain/schema.ts";
import { type EventResult, type Sink, SinkError, type SinkResult } from "./sink.ts";
import type { EventStore, StateSnapshot } from "../store/store.ts";



export interface FlusherOptions {
  store: EventStore;
  sink: Sink;
  quarantine: Quarantine;
  clock: Clock;
  config: FlushSettings;
  scheduler?: Scheduler;
  /** Aborting stops everything at once, without a last flush. */
  signal?: AbortSignal;
  logger?: Logger;
  modes?: readonly Mode[];
  /** Jitter source in [0, 1). */
  random?: () => number;
  marketClock?: MarketClock;
}

/** What the flusher reports per mode into /health. */
export interface FlushStatusSource {
  status(mode: Mode): Record<string, unknown>;
}

export interface Flusher extends FlushStatusSource {
  start(): void;
  /** Asks for a flush; resolves when a flush that started after this call has ended. */
  requestFlush(mode: Mode, options?: { urgent?: boolean }): Promise<void>;
  /** Graceful stop within config.shutdownMs; resolves with what is left unflushed. */
  stop(): Promise<{ left: number }>;
}

/** Full jitter: uniform in [0, min(cap, min·2^(n−1))], at least what Retry-After asks, never above the cap. */
export function backoffDelay(attempt: number, settings: Pick<FlushSettings, "backoffMinMs" | "backoffMaxMs">, random: () => number, retryAfterMs = 0): number {
  const ceiling = Math.min(settings.backoffMaxMs, settings.backoffMinMs * 2 ** Math.max(0, attempt - 1));
  return Math.min(settings.backoffMaxMs, Math.max(retryAfterMs, Math.round(random() * ceiling)));
}

class FlushCancelled extends Error {
  constructor(why: string) {
    super(`flush cancelled: ${why}`);
    this.name = "FlushCancelled";
  }
}

function raceAbort<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(signal.reason);
  // A sink that ignores its signal must not hold the worker hostage.
  return new Promise((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    signal.addEventListener("abort", onAbort, { once: true });
    promise.then(
      (v) => (signal.removeEventListener("abort", onAbort), resolve(v)),
      (e) => (signal.removeEventListener("abort", onAbort), reject(e)),
    );
  });
}

interface Tally {
  sent: number;
  acked: number;
  duplicates: number;
  quarantined: number;
  missing: number;
  stateSent: boolean;
}
const EMPTY: Tally = { sent: 0, acked: 0, duplicates: 0, quarantined: 0, missing: 0, stateSent: false };
const add = (a: Tally, b: Tally): Tally => ({
  sent: a.sent + b.sent,
  acked: a.acked + b.acked,
  duplicates: a.duplicates + b.duplicates,
  quarantined: a.quarantined + b.quarantined,
  missing: a.missing + b.missing,
  stateSent: a.stateSent || b.stateSent,
});

// Bisecting a batch that keeps failing as a whole stops after this many
// single-event rejections: past that, the remote is misconfigured, not the data.
const MAX_ISOLATED_PER_ATTEMPT = 16;

// The flusher shares the one JS thread with ingest: it reads, checks and marks
// a batch in slices of this many rows (about 0.4 ms of SQLite work each) and
// lets pending I/O run between them, so a POST never waits for a whole batch.
const SLICE = 100;
const yieldToLoop = () => new Promise<void>((resolve) => setImmediate(resolve));

class ModeWorker {
  phase: "idle" | "flushing" | "backoff" | "stopped" = "idle";
  requested = false;
  appended = 0;
  consecutiveFailures = 0;
  lastAttemptAt: number | null = null;
  lastSuccessAt: number | null = null;
  lastCycleEndAt: number;
  lastActivityAt: number;
  nextAttemptAt: number | null = null;
  lastError: string | null = null;
  loop: Promise<void> | null = null;
  private wake: { controller: AbortController; kind: "timer" | "backoff" | "floor" } | null = null;
  /** When a critical event last cut a backoff wait short (null: not in this failure streak). */
  private lastUrgentRetryAt: number | null = null;
  private urgentWake = false;
  private cycleAbort: AbortController | null = null;
  private waiters: (() => void)[] = [];
  private sentStateTs: string | null = null;
  /** Events acknowledged by the remote, to be marked flushed during the next send. */
  private deferred: { ids: string[]; seqs: number[] } | null = null;
  private isolated = 0;
  /** The batch being sent, for the flush log when it fails. */
  private current = { count: 0, lastSeq: 0 };

  constructor(
    readonly mode: Mode,
    private readonly f: FlusherImpl,
  ) {
    this.lastCycleEndAt = f.clock.now();
    this.lastActivityAt = f.clock.now();
  }

  request(urgent: boolean): Promise<void> {
    if (this.f.stopping) return Promise.resolve();
    this.requested = true;
    const done = new Promise<void>((resolve) => this.waiters.push(resolve));
    if (this.wake && this.wake.kind !== "floor" && (urgent || this.wake.kind === "timer")) {
      if (this.wake.kind === "backoff") this.urgentWake = true;
      this.wake.controller.abort();
    }
    return done;
  }

  /** Ends any pause at once (stop, watchdog). */
  interrupt(): void {
    this.wake?.controller.abort();
  }

  restart(why: string): void {
    this.cycleAbort?.abort(new FlushCancelled(why));
    this.requested = true;
    this.interrupt();
    if (!this.loop) this.loop = this.run();
  }

  private async pause(ms: number, kind: "timer" | "backoff" | "floor", signal?: AbortSignal): Promise<void> {
    const controller = new AbortController();
    this.wake = { controller, kind };
    try {
      await this.f.scheduler.sleep(ms, signal ? AbortSignal.any([controller.signal, signal]) : controller.signal);
    } catch {
      // Woken early: the caller re-checks why.
    } finally {
      if (this.wake?.controller === controller) this.wake = null;
    }
  }

  async run(): Promise<void> {
    try {
      while (!this.f.stopping) {
        try {
          if (!this.requested) {
            const now = this.f.clock.now();
            const cadence = this.f.market.cadence(now);
            const due = this.lastCycleEndAt + cadence.intervalMs;
            if (now < due) {
              this.phase = "idle";
              this.nextAttemptAt = due;
              await this.pause(Math.min(due, cadence.nextTransition) - now, "timer");
              continue;
            }
          }
          await this.cycle();
        } catch (error) {
          // Only a bug lands here; keep the worker alive without spinning.
          this.f.logger.error("flush worker error", { mode: this.mode, error });
          await this.pause(this.f.config.backoffMaxMs, "backoff");
        }
      }
    } finally {
      this.phase = "stopped";
      this.loop = null;
      for (const w of this.waiters.splice(0)) w();
    }
  }

  /** Drains full batches until the queue is short, a batch makes no progress, or it fails for good. */
  private async cycle(): Promise<void> {
    this.requested = false;
    this.appended = 0;
    const waiters = this.waiters.splice(0);
    const abort = new AbortController();
    this.cycleAbort = abort;
    const signal = AbortSignal.any([abort.signal, this.f.hard.signal]);
    this.phase = "flushing";
    try {
      for (;;) {
        const { tally, batch } = await pRetry(() => this.attempt(signal), {
          retries: Number.POSITIVE_INFINITY,
          // Delays are ours (full jitter, injectable scheduler, cut short by
          // critical events), taken in shouldRetry; p-retry adds none.
          minTimeout: 0,
          signal,
          onFailedAttempt: ({ error, attemptNumber }) => this.failed(error, attemptNumber),
          shouldRetry: async ({ error, attemptNumber }) => {
            if (!(error instanceof SinkError) || !error.retryable || this.f.stopping) return false;
            const delay = backoffDelay(attemptNumber, this.f.config, this.f.random, error.retryAfterMs);
            this.nextAttemptAt = this.f.clock.now() + delay;
            this.phase = "backoff";
            this.urgentWake = false;
            await this.pause(delay, "backoff", signal);
            if (this.urgentWake) {
              // A critical event retries at once, but a stream of them during an
              // outage must not hammer the remote: such early retries are spaced
              // at least backoffMinMs apart.
              const now = this.f.clock.now();
              const floor = this.lastUrgentRetryAt === null ? 0 : this.lastUrgentRetryAt + this.f.config.backoffMinMs - now;
              if (floor > 0) {
                this.nextAttemptAt = now + floor;
                await this.pause(floor, "floor", signal);
              }
              this.lastUrgentRetryAt = this.f.clock.now();
            }
            this.phase = "flushing";
            return !this.f.stopping;
          },
        });
        if (batch < this.f.config.batchSize || tally.acked + tally.quarantined === 0 || this.f.stopping) break;
      }
    } catch (error) {
      if (!signal.aborted && !(error instanceof SinkError)) this.f.logger.error("flush failed", { mode: this.mode, error });
    } finally {
      try {
        await this.commitDeferred();
      } catch (error) {
        // Unmarked events are sent again next time: duplicates, never loss.
        this.f.logger.error("cannot mark flushed events", { mode: this.mode, error });
      }
      this.cycleAbort = null;
      this.lastCycleEndAt = this.lastActivityAt = this.f.clock.now();
      this.phase = "idle";
      for (const w of waiters) w();
    }
  }

  /** One batch: select, validate, send (splitting on poison), apply verdicts, log. */
  async attempt(signal: AbortSignal): Promise<{ tally: Tally; batch: number }> {
    const { store, quarantine, config } = this.f;
    const pending = this.deferred;
    const { events, good, bad } = await this.select(config.batchSize, pending, signal);
    if (events.length === 0) {
      await this.commitDeferred();
      return { tally: EMPTY, batch: 0 };
    }
    // The snapshot rides with events (the Edge Function wants at least one).
    const latest = store.latestState(this.mode);
    const state = latest && latest.ts !== this.sentStateTs ? latest : null;
    this.lastAttemptAt = this.lastActivityAt = this.f.clock.now();
    this.nextAttemptAt = null;
    this.isolated = 0;
    let tally: Tally = { ...EMPTY, quarantined: quarantine.add(bad) };
    // The in-memory count (a COUNT(*) per batch would cost milliseconds on a big backlog).
    const backlog = Math.max(0, store.backlogUsage(this.mode).events - good.length - (pending?.ids.length ?? 0));
    this.current = { count: events.length, lastSeq: events.at(-1)?.seq ?? 0 };
    // A full batch means another follows at once: its marks can wait for that send.
    const defer = events.length === config.batchSize && !this.f.stopping;
    if (good.length > 0) tally = add(tally, await this.send(good, state, backlog, signal, defer));
    else await this.commitDeferred();
    this.succeeded(events, tally);
    return { tally, batch: events.length };
  }

  /**
   * The oldest `limit` unflushed events but those in `skip` (acknowledged,
   * marks pending), in seq order, read and schema-checked a slice at a time.
   * Appends between slices get higher seqs, so the seq cursor misses none.
   */
  private async select(limit: number, skip: { seqs: number[] } | null, signal: AbortSignal) {
    const events: StoredEvent[] = [];
    const good: StoredEvent[] = [];
    const bad: QuarantineInput[] = [];
    let after = 0;
    for (let first = true; events.length < limit; first = false) {
      if (!first) {
        await yieldToLoop();
        // Cancelled meanwhile: nothing was sent, so stop here, as a send in flight would.
        signal.throwIfAborted();
      }
      const want = Math.min(SLICE, limit - events.length);
      const rows = this.f.store.unflushed(this.mode, want, { afterSeq: after, exceptSeqs: skip?.seqs.filter((s) => s > after) });
      for (const e of rows) {
        events.push(e);
        const errors = checkStoredEvent(e);
        if (errors.length === 0) good.push(e);
        else bad.push({ event: e, reason: `fails the shared event schema locally: ${errors[0]!.path} ${errors[0]!.message}`, errors });
      }
      if (rows.length < want) break;
      after = rows.at(-1)!.seq;
    }
    return { events, good, bad };
  }

  /**
   * Marks the previous full batch flushed. Called once the next request is on
   * its way, so the SQLite writes overlap the remote's work instead of adding
   * to it; a crash before this only means those events are sent again (duplicates).
   */
  async commitDeferred(): Promise<void> {
    const acked = this.deferred;
    this.deferred = null;
    if (acked) await this.mark(acked.ids);
  }

  /** Marks in slices, each its own short transaction; the first one at once. */
  private async mark(ids: string[]): Promise<void> {
    for (let i = 0; i < ids.length; i += SLICE) {
      if (i > 0) await yieldToLoop();
      this.f.store.markFlushed(ids.slice(i, i + SLICE));
    }
  }

  private async send(events: StoredEvent[], state: StateSnapshot | null, backlog: number, signal: AbortSignal, defer = false): Promise<Tally> {
    let result: SinkResult;
    try {
      const sending = this.f.sink.send({ mode: this.mode, events, backlog, state, signal });
      sending.catch(() => {});
      await this.commitDeferred();
      result = await raceAbort(sending, signal);
    } catch (error) {
      if (!(error instanceof SinkError) || !error.poison || signal.aborted) throw error;
      if (events.length === 1) {
        if (++this.isolated > MAX_ISOLATED_PER_ATTEMPT) throw error;
        const moved = this.f.quarantine.add([{ event: events[0]!, reason: error.message, remoteStatus: error.remoteStatus }]);
        this.f.logger.warn("event quarantined", { mode: this.mode, seq: events[0]!.seq, reason: error.message });
        return { ...EMPTY, quarantined: moved };
      }
      // Bisect: the half that passes is applied before the other is tried.
      const mid = Math.ceil(events.length / 2);
      const first = await this.send(events.slice(0, mid), state, backlog + events.length - mid, signal);
      const second = await this.send(events.slice(mid), first.stateSent ? null : state, backlog, signal);
      return add(first, second);
    }
    return this.apply(events, state, result, defer);
  }

  private async apply(events: StoredEvent[], state: StateSnapshot | null, result: SinkResult, defer: boolean): Promise<Tally> {
    const byKey = new Map(events.map((e) => [e.idempotency_key, e]));
    const acked: string[] = [];
    const ackedSeqs: number[] = [];
    const rejected: QuarantineInput[] = [];
    let duplicates = 0;
    for (const r of result.results as EventResult[]) {
      const e = byKey.get(r.idempotency_key);
      if (!e) continue;
      byKey.delete(r.idempotency_key);
      if (r.status === "rejected") {
        const first = r.errors?.[0];
        rejected.push({ event: e, reason: `rejected by remote${first ? `: ${first.path} ${first.message}` : ""}`, errors: r.errors ?? [] });
      } else {
        acked.push(e.id);
        ackedSeqs.push(e.seq);
        if (r.status === "duplicate") duplicates++;
      }
    }
    if (defer) this.deferred = { ids: acked, seqs: ackedSeqs };
    else await this.mark(acked);
    const quarantined = this.f.quarantine.add(rejected);
    if (rejected.length > 0) this.f.logger.warn("events quarantined", { mode: this.mode, count: rejected.length, first: rejected[0]!.reason });
    for (const w of result.warnings ?? []) this.f.logger.warn("flush warning", { mode: this.mode, warning: w });
    const stateSent = state !== null && !(result.warnings?.length ?? 0);
    if (stateSent) this.sentStateTs = state.ts;
    return { sent: events.length, acked: acked.length, duplicates, quarantined, missing: byKey.size, stateSent };
  }

  private succeeded(events: StoredEvent[], tally: Tally): void {
    const now = this.f.clock.now();
    if (this.consecutiveFailures > 0) this.f.logger.info("flush recovered", { mode: this.mode, after_failures: this.consecutiveFailures });
    this.consecutiveFailures = 0;
    this.lastUrgentRetryAt = null;
    this.lastSuccessAt = now;
    this.lastError = null;
    if (events.length === 0) return;
    const partial = tally.quarantined > 0 || tally.missing > 0;
    const error = partial ? `${tally.quarantined} quarantined, ${tally.missing} unacknowledged` : null;
    this.f.store.logFlush({ mode: this.mode, count: tally.acked, last_seq: events.at(-1)!.seq, status: partial ? "partial" : "ok", error });
  }

  private failed(error: Error, attempt: number): void {
    this.consecutiveFailures++;
    this.lastError = error.message;
    try {
      this.f.store.logFlush({ mode: this.mode, count: this.current.count, last_seq: this.current.lastSeq, status: "error", error: error.message.slice(0, 2000) });
    } catch {
      // The flush log is an audit trail; a full disk must not stop the retries.
    }
    // 1st, 2nd, 4th, 8th … failure at warn: visible without flooding.
    const n = this.consecutiveFailures;
    const level = (n & (n - 1)) === 0 ? "warn" : "debug";
    this.f.logger[level]("flush attempt failed", { mode: this.mode, attempt, consecutive: n, error });
  }

  status(): Record<string, unknown> {
    const now = this.f.clock.now();
    const cadence = this.f.market.cadence(now);
    const iso = (t: number | null) => (t === null ? null : new Date(t).toISOString());
    return {
      remote: this.f.sink.name,
      flusher: this.phase,
      cadence: cadence.active ? "market_hours" : "off_hours",
      interval_ms: cadence.intervalMs,
      consecutive_failures: this.consecutiveFailures,
      last_attempt_at: iso(this.lastAttemptAt),
      last_success_at: iso(this.lastSuccessAt),
      next_attempt_at: this.phase === "flushing" ? null : iso(this.nextAttemptAt),
      last_error: this.lastError,
      quarantined: this.f.quarantine.count(this.mode),
    };
  }
}

class FlusherImpl implements Flusher {
  readonly store: EventStore;
  readonly sink: Sink;
  readonly quarantine: Quarantine;
  readonly clock: Clock;
  readonly config: FlushSettings;
  readonly scheduler: Scheduler;
  readonly logger: Logger;
  readonly random: () => number;
  readonly market: MarketClock;
  /** Aborts sends in flight: hard stop or the shutdown deadline. */
  readonly hard = new AbortController();
  stopping = false;
  private readonly workers = new Map<Mode, ModeWorker>();
  private readonly stopWatchdog = new AbortController();
  private unsubscribe: (() => void) | null = null;
  private stopped: Promise<{ left: number }> | null = null;

  constructor(o: FlusherOptions) {
    this.store = o.store;
    this.sink = o.sink;
    this.quarantine = o.quarantine;
    this.clock = o.clock;
    this.config = o.config;
    this.scheduler = o.scheduler ?? systemScheduler;
    this.logger = o.logger ?? silentLogger;
    this.random = o.random ?? Math.random;
    this.market =
      o.marketClock ??
      createMarketClock({
        clock: o.clock,
        activeIntervalMs: o.config.activeIntervalMs,
        offHoursIntervalMs: o.config.offHoursIntervalMs,
        marketHours: o.config.marketHours,
        logger: this.logger,
      });
    for (const mode of o.modes ?? MODES) this.workers.set(mode, new ModeWorker(mode, this));
    o.signal?.addEventListener(
      "abort",
      () => {
        this.stopping = true;
        this.hard.abort(new FlushCancelled("service aborted"));
        this.stopWatchdog.abort();
        for (const w of this.workers.values()) w.interrupt();
      },
      { once: true },
    );
  }

  start(): void {
    const critical = new Set(this.config.criticalSubtypes);
    this.unsubscribe = this.store.onAppend((events) => {
      const urgent = new Set<Mode>();
      for (const e of events) {
        const w = this.workers.get(e.mode);
        if (!w) continue;
        w.appended++;
        if (this.config.criticalImmediate && critical.has(e.subtype)) urgent.add(e.mode);
      }
      for (const [mode, w] of this.workers) {
        if (urgent.has(mode)) void w.request(true);
        else if (w.appended >= this.config.batchSize && !w.requested) void w.request(false);
      }
    });
    // Crash recovery: whatever a previous run left unflushed goes out now.
    for (const w of this.workers.values()) {
      void w.request(true);
      w.loop = w.run();
    }
    void this.watchdog();
  }

  requestFlush(mode: Mode, options: { urgent?: boolean } = {}): Promise<void> {
    return this.workers.get(mode)?.request(options.urgent ?? true) ?? Promise.resolve();
  }

  private async watchdog(): Promise<void> {
    const every = Math.max(1000, Math.floor(this.config.stallMs / 4));
    while (!this.stopping) {
      try {
        await this.scheduler.sleep(every, this.stopWatchdog.signal);
      } catch {
        return;
      }
      const now = this.clock.now();
      for (const w of this.workers.values()) {
        if (this.stopping || now - w.lastActivityAt <= this.config.stallMs || this.store.backlogUsage(w.mode).events === 0) continue;
        this.logger.warn("flusher stalled: restarting it", { mode: w.mode, idle_ms: now - w.lastActivityAt });
        w.lastActivityAt = now;
        w.restart("stalled");
      }
    }
  }

  stop(): Promise<{ left: number }> {
    this.stopped ??= this.shutdown();
    return this.stopped;
  }

  private async shutdown(): Promise<{ left: number }> {
    this.stopping = true;
    this.stopWatchdog.abort();
    this.unsubscribe?.();
    const deadline = new AbortController();
    const timer = this.scheduler.sleep(this.config.shutdownMs, deadline.signal).then(
      () => this.hard.abort(new FlushCancelled(`shutdown deadline of ${this.config.shutdownMs} ms`)),
      () => {},
    );
    for (const w of this.workers.values()) w.interrupt();
    const loops = [...this.workers.values()].map((w) => w.loop ?? Promise.resolve());
    await raceAbort(Promise.all(loops), this.hard.signal).catch(() => {});
    // One last flush: no backoff, stop at the first failure or the deadline.
    for (const w of this.workers.values()) {
      while (!this.hard.signal.aborted) {
        try {
          const { tally, batch } = await w.attempt(this.hard.signal);
          if (batch === 0 || tally.acked + tally.quarantined === 0) break;
        } catch (error) {
          if (!this.hard.signal.aborted) this.logger.warn("last flush failed", { mode: w.mode, error });
          break;
        }
      }
      try {
        await w.commitDeferred();
      } catch (error) {
        this.logger.error("cannot mark flushed events", { mode: w.mode, error });
      }
    }
    deadline.abort();
    await timer;
    let left = 0;
    for (const w of this.workers.values()) left += this.store.backlog(w.mode);
    return { left };
  }

  status(mode: Mode): Record<string, unknown> {
    const w = this.workers.get(mode);
    return w ? w.status() : { remote: this.sink.name, flusher: "disabled" };
  }
}

export function createFlusher(options: FlusherOptions): Flusher {
  return new FlusherImpl(options);
}
