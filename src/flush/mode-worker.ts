// One mode's flush worker. It waits for its cadence (market clock), a
// critical event, or a full batch; then drains the queue (pipeline.ts: in seq
// order, several batches in flight when the sink allows). A failed batch is
// retried after the backoff the pipeline computes, a wait this worker cuts
// short for critical events but never more often than backoffMinMs; only
// events the remote acknowledged are marked flushed; poison events are
// quarantined so the queue never blocks. Its state is its own: the flusher
// tells it what happened (appended, restart, stop) and reads status().
import type { Clock } from "../lib/clock.ts";
import type { Logger } from "../lib/log.ts";
import type { Scheduler } from "../lib/scheduler.ts";
import type { Mode } from "../../supabase/functions/_shared/event-schema.ts";
import type { EventStore } from "../store/store.ts";
import type { BatchOutcome } from "./batch.ts";
import type { MarketClock } from "./market-clock.ts";
import { FlushCancelled, Pipeline } from "./pipeline.ts";
import type { BatchReader } from "./reader.ts";
import type { Quarantine } from "./quarantine.ts";
import { type Sink, SinkError } from "./sink.ts";
import { flushedThrough, type WorkerPhase, type WorkerView, workerStatus } from "./status.ts";
import type { FlushSettings } from "../config.ts";

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
  readonly reader: BatchReader;
  readonly stopping: boolean;
}

export class ModeWorker {
  private phase: WorkerPhase = "idle";
  private requested = false;
  /** Events appended since the last cycle began: a full batch's worth asks for a flush. */
  private appendedSinceCycle = 0;
  private consecutiveFailures = 0;
  private lastAttemptAt: number | null = null;
  private lastSuccessAt: number | null = null;
  private lastCycleEndAt: number;
  private lastActivityAt: number;
  private nextAttemptAt: number | null = null;
  private lastError: string | null = null;
  private loop: Promise<void> | null = null;
  private wake: { controller: AbortController; kind: "timer" | "backoff" | "floor" } | null = null;
  /** When a critical event last cut a backoff wait short (null: not in this failure streak). */
  private lastUrgentRetryAt: number | null = null;
  private urgentWake = false;
  private cycleAbort: AbortController | null = null;
  private waiters: (() => void)[] = [];
  private readonly pipeline: Pipeline;

  constructor(
    readonly mode: Mode,
    private readonly ctx: WorkerContext,
  ) {
    this.lastCycleEndAt = ctx.clock.now();
    this.lastActivityAt = ctx.clock.now();
    this.pipeline = new Pipeline(mode, ctx, {
      attempting: () => {
        this.lastAttemptAt = this.lastActivityAt = this.ctx.clock.now();
        this.nextAttemptAt = null;
      },
      succeeded: (batch, outcome) => this.succeeded(batch, outcome),
      failed: (error, attempt, batch) => this.failed(error, attempt, batch),
      waitBeforeRetry: (delayMs, signal) => this.waitBeforeRetry(delayMs, signal),
    });
  }

  /** Starts the loop with a flush of whatever a previous run left unflushed (crash recovery). */
  start(): void {
    void this.request(true);
    this.loop ??= this.run();
  }

  /** `count` events of this mode were stored; `urgent`: one of them is critical and goes at once. */
  appended(count: number, urgent: boolean): void {
    this.appendedSinceCycle += count;
    if (urgent) void this.request(true);
    else if (this.appendedSinceCycle >= this.ctx.config.batchSize && !this.requested) void this.request(false);
  }

  /** How long the worker has done nothing: the stall watchdog's measure. */
  idleFor(now: number): number {
    return now - this.lastActivityAt;
  }

  /** Resolves when the loop has ended (after stop, or at once when it never ran). */
  finished(): Promise<void> {
    return this.loop ?? Promise.resolve();
  }

  request(urgent: boolean): Promise<void> {
    if (this.ctx.stopping) return Promise.resolve();
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

  /** Cuts the cycle in flight short and starts again (the stall watchdog). */
  restart(why: string): void {
    this.lastActivityAt = this.ctx.clock.now();
    this.cycleAbort?.abort(new FlushCancelled(why));
    this.requested = true;
    this.interrupt();
    if (!this.loop) this.loop = this.run();
  }

  private async pause(ms: number, kind: "timer" | "backoff" | "floor", signal?: AbortSignal): Promise<void> {
    const controller = new AbortController();
    this.wake = { controller, kind };
    try {
      await this.ctx.scheduler.sleep(ms, signal ? AbortSignal.any([controller.signal, signal]) : controller.signal);
    } catch {
      // Woken early: the caller re-checks why.
    } finally {
      if (this.wake?.controller === controller) this.wake = null;
    }
  }

  async run(): Promise<void> {
    try {
      while (!this.ctx.stopping) {
        try {
          if (!this.requested) {
            const now = this.ctx.clock.now();
            const cadence = this.ctx.market.cadence(now);
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
          this.ctx.logger.error("flush worker error", { mode: this.mode, error });
          await this.pause(this.ctx.config.backoffMaxMs, "backoff");
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
    this.appendedSinceCycle = 0;
    const waiters = this.waiters.splice(0);
    const abort = new AbortController();
    this.cycleAbort = abort;
    const signal = AbortSignal.any([abort.signal, this.ctx.hard.signal]);
    this.phase = "flushing";
    try {
      await this.pipeline.drain(signal, { retry: true, more: () => !this.ctx.stopping });
    } catch (error) {
      if (!signal.aborted && !(error instanceof SinkError))
        this.ctx.logger.error("flush failed", { mode: this.mode, error });
    } finally {
      try {
        await this.commitDeferred();
      } catch (error) {
        // Unmarked events are sent again next time: duplicates, never loss.
        this.ctx.logger.error("cannot mark flushed events", { mode: this.mode, error });
      }
      this.cycleAbort = null;
      this.lastCycleEndAt = this.lastActivityAt = this.ctx.clock.now();
      this.phase = "idle";
      for (const w of waiters) w();
    }
  }

  /** The last flush at shutdown: no backoff, the first failure ends it (thrown). */
  lastFlush(signal: AbortSignal): Promise<void> {
    return this.pipeline.drain(signal, { retry: false, more: () => true });
  }

  /**
   * Waits the backoff the pipeline computed before its next attempt; a
   * critical event cuts the wait short, but such early retries are spaced at
   * least backoffMinMs apart. False when stopping (the failure is final).
   */
  private async waitBeforeRetry(delayMs: number, signal: AbortSignal): Promise<boolean> {
    if (this.ctx.stopping) return false;
    this.nextAttemptAt = this.ctx.clock.now() + delayMs;
    this.phase = "backoff";
    this.urgentWake = false;
    await this.pause(delayMs, "backoff", signal);
    if (this.urgentWake) {
      const now = this.ctx.clock.now();
      const floor = urgentRetryFloor(this.lastUrgentRetryAt, this.ctx.config.backoffMinMs, now);
      if (floor > 0) {
        this.nextAttemptAt = now + floor;
        await this.pause(floor, "floor", signal);
      }
      this.lastUrgentRetryAt = this.ctx.clock.now();
    }
    this.phase = "flushing";
    return !this.ctx.stopping;
  }

  /** Marks what the remote acknowledged and is not marked yet. */
  commitDeferred(): Promise<void> {
    return this.pipeline.commitDeferred();
  }

  private succeeded(batch: { count: number; lastSeq: number }, outcome: BatchOutcome): void {
    const now = this.ctx.clock.now();
    if (this.consecutiveFailures > 0)
      this.ctx.logger.info("flush recovered", { mode: this.mode, after_failures: this.consecutiveFailures });
    this.consecutiveFailures = 0;
    this.lastUrgentRetryAt = null;
    this.lastSuccessAt = now;
    this.lastError = null;
    if (batch.count === 0) return;
    const partial = outcome.quarantined > 0 || outcome.missing > 0;
    const error = partial ? `${outcome.quarantined} quarantined, ${outcome.missing} unacknowledged` : null;
    this.ctx.store.logFlush({
      mode: this.mode,
      count: outcome.acked,
      last_seq: batch.lastSeq,
      status: partial ? "partial" : "ok",
      error,
    });
  }

  private failed(error: Error, attempt: number, batch: { count: number; lastSeq: number }): void {
    this.consecutiveFailures++;
    this.lastError = error.message;
    try {
      this.ctx.store.logFlush({
        mode: this.mode,
        count: batch.count,
        last_seq: batch.lastSeq,
        status: "error",
        error: error.message.slice(0, 2000),
      });
    } catch {
      // The flush log is an audit trail; a full disk must not stop the retries.
    }
    // 1st, 2nd, 4th, 8th … failure at warn: visible without flooding.
    const n = this.consecutiveFailures;
    const level = (n & (n - 1)) === 0 ? "warn" : "debug";
    this.ctx.logger[level]("flush attempt failed", { mode: this.mode, attempt, consecutive: n, error });
  }

  status(): Record<string, unknown> {
    const view: WorkerView = {
      phase: this.phase,
      consecutiveFailures: this.consecutiveFailures,
      lastAttemptAt: this.lastAttemptAt,
      lastSuccessAt: this.lastSuccessAt,
      nextAttemptAt: this.nextAttemptAt,
      lastError: this.lastError,
    };
    return workerStatus(view, {
      now: this.ctx.clock.now(),
      market: this.ctx.market,
      remote: this.ctx.sink.name,
      quarantined: this.ctx.quarantine.count(this.mode),
      inFlight: this.pipeline.inFlight,
      window: this.pipeline.windowSize(),
      flushedThroughSeq: flushedThrough(this.ctx.store, this.mode),
    });
  }
}

/**
 * A critical event retries at once, but a stream of them during an outage
 * must not hammer the remote: such early retries are spaced at least
 * backoffMinMs apart. How long to wait still (≤ 0: go now).
 */
export function urgentRetryFloor(lastUrgentRetryAt: number | null, backoffMinMs: number, now: number): number {
  return lastUrgentRetryAt === null ? 0 : lastUrgentRetryAt + backoffMinMs - now;
}
