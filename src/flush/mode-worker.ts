// One mode's flush worker. It waits for its cadence (market clock), a
// critical event, or a full batch; then drains the queue (pipeline.ts: in seq
// order, several batches in flight when the sink allows). A failed batch is
// retried with the backoff policy, cut short by critical events but never
// more often than backoffMinMs; only events the remote acknowledged are
// marked flushed; poison events are quarantined so the queue never blocks.
import type { Clock } from "../lib/clock.ts";
import type { Logger } from "../lib/log.ts";
import type { Scheduler } from "../lib/scheduler.ts";
import type { Mode } from "../../supabase/functions/_shared/event-schema.ts";
import type { EventStore } from "../store/store.ts";
import type { Tally } from "./batch.ts";
import type { MarketClock } from "./market-clock.ts";
import { FlushCancelled, Pipeline } from "./pipeline.ts";
import type { BatchReader } from "./reader.ts";
import type { Quarantine } from "./quarantine.ts";
import { type Sink, SinkError } from "./sink.ts";
import { flushedThrough, type WorkerPhase, workerStatus } from "./status.ts";
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
  private readonly pipeline: Pipeline;

  constructor(
    readonly mode: Mode,
    private readonly f: WorkerContext,
  ) {
    this.lastCycleEndAt = f.clock.now();
    this.lastActivityAt = f.clock.now();
    this.pipeline = new Pipeline(mode, f, {
      attempting: () => {
        this.lastAttemptAt = this.lastActivityAt = this.f.clock.now();
        this.nextAttemptAt = null;
      },
      succeeded: (batch, tally) => this.succeeded(batch, tally),
      failed: (error, attempt, batch) => this.failed(error, attempt, batch),
      retry: (error, attempt, signal) => this.backoff(error, attempt, signal),
    });
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
      await this.pipeline.drain(signal, { retry: true, more: () => !this.f.stopping });
    } catch (error) {
      if (!signal.aborted && !(error instanceof SinkError))
        this.f.logger.error("flush failed", { mode: this.mode, error });
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

  /** The last flush at shutdown: no backoff, the first failure ends it (thrown). */
  lastFlush(signal: AbortSignal): Promise<void> {
    return this.pipeline.drain(signal, { retry: false, more: () => true });
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

  /** Marks what the remote acknowledged and is not marked yet. */
  commitDeferred(): Promise<void> {
    return this.pipeline.commitDeferred();
  }

  private succeeded(batch: { count: number; lastSeq: number }, tally: Tally): void {
    const now = this.f.clock.now();
    if (this.consecutiveFailures > 0)
      this.f.logger.info("flush recovered", { mode: this.mode, after_failures: this.consecutiveFailures });
    this.consecutiveFailures = 0;
    this.lastUrgentRetryAt = null;
    this.lastSuccessAt = now;
    this.lastError = null;
    if (batch.count === 0) return;
    const partial = tally.quarantined > 0 || tally.missing > 0;
    const error = partial ? `${tally.quarantined} quarantined, ${tally.missing} unacknowledged` : null;
    this.f.store.logFlush({
      mode: this.mode,
      count: tally.acked,
      last_seq: batch.lastSeq,
      status: partial ? "partial" : "ok",
      error,
    });
  }

  private failed(error: Error, attempt: number, batch: { count: number; lastSeq: number }): void {
    this.consecutiveFailures++;
    this.lastError = error.message;
    try {
      this.f.store.logFlush({
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
    this.f.logger[level]("flush attempt failed", { mode: this.mode, attempt, consecutive: n, error });
  }

  status(): Record<string, unknown> {
    return workerStatus(this, {
      now: this.f.clock.now(),
      market: this.f.market,
      remote: this.f.sink.name,
      quarantined: this.f.quarantine.count(this.mode),
      inFlight: this.pipeline.inFlight,
      window: this.pipeline.windowSize(),
      flushedThroughSeq: flushedThrough(this.f.store, this.mode),
    });
  }
}

// The retry policy of a failing batch: capped, fully jittered exponential
// backoff that honours Retry-After, and the floor that spaces out the early
// retries critical events ask for during an outage.
/** Full jitter: uniform in [0, min(cap, min·2^(n−1))], at least what Retry-After asks, never above the cap. */
export function backoffDelay(
  attempt: number,
  settings: Pick<FlushSettings, "backoffMinMs" | "backoffMaxMs">,
  random: () => number,
  retryAfterMs = 0,
): number {
  const ceiling = Math.min(settings.backoffMaxMs, settings.backoffMinMs * 2 ** Math.max(0, attempt - 1));
  return Math.min(settings.backoffMaxMs, Math.max(retryAfterMs, Math.round(random() * ceiling)));
}

/**
 * A critical event retries at once, but a stream of them during an outage
 * must not hammer the remote: such early retries are spaced at least
 * backoffMinMs apart. How long to wait still (≤ 0: go now).
 */
export function urgentRetryFloor(lastUrgentRetryAt: number | null, backoffMinMs: number, now: number): number {
  return lastUrgentRetryAt === null ? 0 : lastUrgentRetryAt + backoffMinMs - now;
}
