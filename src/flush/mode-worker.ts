// One mode's flush worker. It waits for its cadence (market clock), a
// critical event, or a full batch; then drains the queue batch by batch. A
// batch is retried by p-retry with the backoff policy; only events the remote
// acknowledged are marked flushed; poison events are quarantined so the queue
// never blocks.
import pRetry from "p-retry";
import type { FlushSettings } from "../config.ts";
import type { Clock } from "../lib/clock.ts";
import type { Logger } from "../lib/log.ts";
import type { Scheduler } from "../lib/scheduler.ts";
import type { Mode, StoredEvent } from "../domain/schema.ts";
import type { EventStore, StateSnapshot } from "../store/store.ts";
import { backoffDelay, urgentRetryFloor } from "./backoff.ts";
import { addTally, EMPTY_TALLY, markInSlices, readBatch, sortVerdicts, type Tally } from "./batch.ts";
import { FlushCancelled, raceAbort } from "./cancel.ts";
import type { MarketClock } from "./market-clock.ts";
import type { Quarantine } from "./quarantine.ts";
import { type Sink, SinkError, type SinkResult } from "./sink.ts";
import { type WorkerPhase, workerStatus } from "./status.ts";

/** What every worker shares: the flusher's dependencies and its stop state. */
export interface WorkerContext {
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
  readonly hard: AbortController;
  readonly stopping: boolean;
}

// Bisecting a batch that keeps failing as a whole stops after this many
// single-event rejections: past that, the remote is misconfigured, not the data.
const MAX_ISOLATED_PER_ATTEMPT = 16;

export class ModeWorker {
  phase: WorkerPhase = "idle";
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
    private readonly f: WorkerContext,
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
          shouldRetry: ({ error, attemptNumber }) => this.backoff(error, attemptNumber, signal),
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

  /** Waits out the backoff before a retry; false when the error cannot be retried. */
  private async backoff(error: Error, attemptNumber: number, signal: AbortSignal): Promise<boolean> {
    if (!(error instanceof SinkError) || !error.retryable || this.f.stopping) return false;
    const delay = backoffDelay(attemptNumber, this.f.config, this.f.random, error.retryAfterMs);
    this.nextAttemptAt = this.f.clock.now() + delay;
    this.phase = "backoff";
    this.urgentWake = false;
    await this.pause(delay, "backoff", signal);
    if (this.urgentWake) {
      const now = this.f.clock.now();
      const floor = urgentRetryFloor(this.lastUrgentRetryAt, this.f.config.backoffMinMs, now);
      if (floor > 0) {
        this.nextAttemptAt = now + floor;
        await this.pause(floor, "floor", signal);
      }
      this.lastUrgentRetryAt = this.f.clock.now();
    }
    this.phase = "flushing";
    return !this.f.stopping;
  }

  /** One batch: select, validate, send (splitting on poison), apply verdicts, log. */
  async attempt(signal: AbortSignal): Promise<{ tally: Tally; batch: number }> {
    const { store, quarantine, config } = this.f;
    const pending = this.deferred;
    const { events, good, bad } = await readBatch(store, this.mode, config.batchSize, pending, signal);
    if (events.length === 0) {
      await this.commitDeferred();
      return { tally: EMPTY_TALLY, batch: 0 };
    }
    // The snapshot rides with events (the Edge Function wants at least one).
    const latest = store.latestState(this.mode);
    const state = latest && latest.ts !== this.sentStateTs ? latest : null;
    this.lastAttemptAt = this.lastActivityAt = this.f.clock.now();
    this.nextAttemptAt = null;
    this.isolated = 0;
    let tally: Tally = { ...EMPTY_TALLY, quarantined: quarantine.add(bad) };
    // The in-memory count (a COUNT(*) per batch would cost milliseconds on a big backlog).
    const backlog = Math.max(0, store.backlogUsage(this.mode).events - good.length - (pending?.ids.length ?? 0));
    this.current = { count: events.length, lastSeq: events.at(-1)?.seq ?? 0 };
    // A full batch means another follows at once: its marks can wait for that send.
    const defer = events.length === config.batchSize && !this.f.stopping;
    if (good.length > 0) tally = addTally(tally, await this.send(good, state, backlog, signal, defer));
    else await this.commitDeferred();
    this.succeeded(events, tally);
    return { tally, batch: events.length };
  }

  /**
   * Marks the previous full batch flushed. Called once the next request is on
   * its way, so the SQLite writes overlap the remote's work instead of adding
   * to it; a crash before this only means those events are sent again (duplicates).
   */
  async commitDeferred(): Promise<void> {
    const acked = this.deferred;
    this.deferred = null;
    if (acked) await markInSlices(this.f.store, acked.ids);
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
        return { ...EMPTY_TALLY, quarantined: moved };
      }
      // Bisect: the half that passes is applied before the other is tried.
      const mid = Math.ceil(events.length / 2);
      const first = await this.send(events.slice(0, mid), state, backlog + events.length - mid, signal);
      const second = await this.send(events.slice(mid), first.stateSent ? null : state, backlog, signal);
      return addTally(first, second);
    }
    return this.apply(events, state, result, defer);
  }

  private async apply(events: StoredEvent[], state: StateSnapshot | null, result: SinkResult, defer: boolean): Promise<Tally> {
    const { acked, rejected, duplicates, missing } = sortVerdicts(events, result);
    if (defer) this.deferred = acked;
    else await markInSlices(this.f.store, acked.ids);
    const quarantined = this.f.quarantine.add(rejected);
    if (rejected.length > 0) this.f.logger.warn("events quarantined", { mode: this.mode, count: rejected.length, first: rejected[0]!.reason });
    for (const w of result.warnings ?? []) this.f.logger.warn("flush warning", { mode: this.mode, warning: w });
    const stateSent = state !== null && !(result.warnings?.length ?? 0);
    if (stateSent) this.sentStateTs = state.ts;
    return { sent: events.length, acked: acked.ids.length, duplicates, quarantined, missing, stateSent };
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
    return workerStatus(this, { now: this.f.clock.now(), market: this.f.market, remote: this.f.sink.name, quarantined: this.f.quarantine.count(this.mode) });
  }
}
