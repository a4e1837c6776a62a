// How one mode's queue is drained: batches are read in seq order and sent
// with up to `window` of them in flight when the sink commits in order (each
// later batch names the last event of the one before it, and the remote holds
// its commit until that one has committed), one at a time otherwise. Batches
// are settled strictly in seq order: the oldest one's verdicts are applied
// (and retried, split on poison, logged) before the next one's, so local
// marks, the flush log and the quarantine read as if they had gone one by one.
import pRetry from "p-retry";
import type { FlushSettings } from "../config.ts";
import type { Logger } from "../lib/log.ts";
import type { Mode, StoredEvent } from "../../supabase/functions/_shared/event-schema.ts";
import type { EventStore, StateSnapshot } from "../store/store.ts";
import { addOutcomes, NO_OUTCOME, markAcked, type ReadBatch, sortVerdicts, type BatchOutcome } from "./batch.ts";
import type { Quarantine } from "./quarantine.ts";
import type { BatchReader } from "./reader.ts";
import { type EventRef, RemoteOutOfOrderError, type Sink, SinkError, type SinkResult } from "./sink.ts";

export interface PipelineContext {
  readonly store: EventStore;
  readonly sink: Sink;
  readonly quarantine: Quarantine;
  readonly config: FlushSettings;
  readonly logger: Logger;
  readonly reader: BatchReader;
  /** Jitter source in [0, 1) for the backoff. */
  readonly random: () => number;
}

/** What the pipeline tells its worker, and asks it. */
export interface PipelineHooks {
  /** A batch is being tried: read, or a request about to go out. */
  attempting(): void;
  /** A batch is settled: every verdict applied. */
  succeeded(batch: { count: number; lastSeq: number }, outcome: BatchOutcome): void;
  /** An attempt at a batch failed. */
  failed(error: Error, attempt: number, batch: { count: number; lastSeq: number }): void;
  /** Waits `delayMs` before the next attempt (the worker may cut it short); false when stopping. */
  waitBeforeRetry(delayMs: number, signal: AbortSignal): Promise<boolean>;
}

export interface DrainOptions {
  /** false: one attempt per batch, the first failure ends the drain (the last flush at shutdown). */
  retry: boolean;
  /** Asked before each new batch is read; false stops reading (the batches in flight still settle). */
  more(): boolean;
}

/** A batch read and (once opened) sent, until its verdicts are settled. */
interface InFlightBatch extends ReadBatch {
  /** The seq the batch was read after. */
  from: number;
  /** Events that failed the schema locally and went to the quarantine. */
  quarantined: number;
  state: StateSnapshot | null;
  backlog: number;
  /** The first attempt, sent when the slot was opened; null when nothing was sent. */
  sending: Promise<SinkResult> | null;
}

// Bisecting a batch that keeps failing as a whole stops after this many
// single-event rejections: past that, the remote is misconfigured, not the data.
const MAX_ISOLATED_PER_ATTEMPT = 16;

export class Pipeline {
  /** Batches sent and not yet settled (for /health). */
  inFlight = 0;
  /** The snapshot last delivered (its ts and JSON: two snapshots may share a millisecond). */
  private sentState: string | null = null;
  /** Events acknowledged by the remote, in seq order, marked flushed once the next requests are out. */
  private deferred: EventRef[] = [];
  private isolated = 0;

  constructor(
    readonly mode: Mode,
    private readonly ctx: PipelineContext,
    private readonly hooks: PipelineHooks,
  ) {}

  /** Batches allowed in flight now: the window only for a sink that commits in order. */
  windowSize(): number {
    return this.ctx.sink.ordered ? Math.max(1, this.ctx.config.window) : 1;
  }

  /**
   * Drains full batches until the queue is short, a batch makes no progress,
   * `more()` says stop, or a batch fails for good (thrown). Batches still in
   * flight then are abandoned unsettled: whatever they committed is sent again
   * later and answered as duplicates.
   */
  async drain(signal: AbortSignal, options: DrainOptions): Promise<void> {
    const window: InFlightBatch[] = [];
    let cursor = 0;
    let more = true;
    try {
      for (;;) {
        while (more && window.length < this.windowSize() && options.more()) {
          const slot = await this.open(cursor, window, signal);
          if (!slot) {
            more = false;
            break;
          }
          window.push(slot);
          cursor = slot.lastSeq;
          if (slot.count < this.ctx.config.batchSize) more = false;
        }
        // The requests above are on their way: the marks overlap the remote's work.
        await this.commitDeferred();
        const head = window.shift();
        if (!head) break;
        const outcome = await this.settle(head, signal, options.retry, () => window.length === 0);
        if (window.length === 0) {
          // A retry may have read further than the first attempt.
          cursor = head.lastSeq;
          more = head.count >= this.ctx.config.batchSize;
        }
        if (outcome.acked + outcome.quarantined === 0) more = false;
      }
      // No batch carried the newest snapshot (no event was pending): it goes alone.
      await this.flushState(signal, options.retry);
    } finally {
      this.inFlight = 0;
    }
  }

  /**
   * Sends the newest state snapshot on its own when no batch has carried it,
   * so it reaches the remote within one flush interval even when no event is
   * pending. Retried like a batch; the flush log records only failures.
   */
  private async flushState(signal: AbortSignal, retry: boolean): Promise<void> {
    const { store } = this.ctx;
    const latest = store.latestState(this.mode);
    if (!latest || stateKey(latest) === this.sentState) return;
    const batch = { count: 0, lastSeq: store.lastSeq(this.mode) };
    const attempt = async () => {
      const backlog = store.backlogUsage(this.mode).events;
      const outcome = this.apply([], latest, await raceAbort(this.postEvents([], latest, backlog, signal), signal));
      this.hooks.succeeded(batch, outcome);
    };
    if (!retry) return await attempt();
    await this.retried(attempt, batch, signal);
  }

  /**
   * `attempt` until it succeeds or the failure is final: p-retry's loop, with
   * the backoff decided here — capped, fully jittered exponential backoff that
   * honours Retry-After (backoffDelay below) for a retryable SinkError, no
   * retry for anything else — and waited by the worker, which can cut the
   * wait short for a critical event. p-retry's own timer is off (minTimeout
   * 0): it can neither be woken nor run on the injectable scheduler.
   */
  private retried<T>(
    attempt: () => Promise<T>,
    batch: { count: number; lastSeq: number },
    signal: AbortSignal,
  ): Promise<T> {
    return pRetry(attempt, {
      retries: Number.POSITIVE_INFINITY,
      minTimeout: 0,
      signal,
      onFailedAttempt: ({ error, attemptNumber }) => this.hooks.failed(error, attemptNumber, batch),
      shouldRetry: ({ error, attemptNumber }) => {
        if (!(error instanceof SinkError) || !error.retryable) return false;
        const delay = backoffDelay(attemptNumber, this.ctx.config, this.ctx.random, error.retryAfterMs);
        return this.hooks.waitBeforeRetry(delay, signal);
      },
    });
  }

  /** Marks what the remote acknowledged; a crash before this only means duplicates later. */
  async commitDeferred(): Promise<void> {
    const acked = this.deferred;
    this.deferred = [];
    if (acked.length > 0) await markAcked(this.ctx.store, acked);
  }

  /** Reads the batch after seq `from`; events failing the schema go to the quarantine. */
  private async read(
    from: number,
    window: readonly InFlightBatch[],
    signal: AbortSignal,
  ): Promise<InFlightBatch | null> {
    const { store, quarantine, config } = this.ctx;
    const batch = await this.ctx.reader.read(this.mode, config.batchSize, from, signal);
    if (batch.count === 0) return null;
    const quarantined = quarantine.add(batch.bad);
    // The snapshot rides with events once: not again with the other batches
    // of the window (with no event pending, flushState() sends it alone).
    const latest = batch.good.length > 0 ? store.latestState(this.mode) : null;
    const state =
      latest &&
      stateKey(latest) !== this.sentState &&
      !window.some((s) => s.state && stateKey(s.state) === stateKey(latest))
        ? latest
        : null;
    // The in-memory count (a COUNT(*) per batch would cost milliseconds on a big backlog).
    const ahead = window.reduce((n, s) => n + s.good.length, 0) + this.deferred.length + batch.good.length;
    const backlog = Math.max(0, store.backlogUsage(this.mode).events - ahead);
    return { ...batch, from, quarantined, state, backlog, sending: null };
  }

  /** Reads the next batch after `cursor` and sends it at once, conditioned on the batch before it. */
  private async open(
    cursor: number,
    window: readonly InFlightBatch[],
    signal: AbortSignal,
  ): Promise<InFlightBatch | null> {
    const slot = await this.read(cursor, window, signal);
    if (!slot) return null;
    if (slot.good.length === 0) {
      this.hooks.attempting();
      return slot;
    }
    const before = window.findLast((s) => s.sending !== null);
    slot.sending = this.post(slot, before ? before.good.at(-1)!.idempotency_key : null, signal);
    this.inFlight++;
    // In the same tick as the send: the marks overlap the remote's work.
    await this.commitDeferred();
    return slot;
  }

  /** Sends a slot's events as read: pre-encoded when the reader encoded them and the sink takes that. */
  private post(slot: InFlightBatch, afterKey: string | null, signal: AbortSignal): Promise<SinkResult> {
    const common = { mode: this.mode, backlog: slot.backlog, state: slot.state, signal, afterKey };
    this.hooks.attempting();
    const { sink } = this.ctx;
    const sending =
      slot.json !== null && sink.sendEncoded
        ? sink.sendEncoded({ ...common, refs: slot.good, json: slot.json })
        : sink.send({ ...common, events: eventsOf(slot) });
    sending.catch(() => {}); // settled (or abandoned) later
    return sending;
  }

  private postEvents(
    events: StoredEvent[],
    state: StateSnapshot | null,
    backlog: number,
    signal: AbortSignal,
  ): Promise<SinkResult> {
    this.hooks.attempting();
    const sending = this.ctx.sink.send({ mode: this.mode, events, backlog, state, signal, afterKey: null });
    sending.catch(() => {});
    return sending;
  }

  /** Applies the oldest batch's verdicts, retrying it (alone, unconditioned) as the worker's backoff allows. */
  private async settle(
    slot: InFlightBatch,
    signal: AbortSignal,
    retry: boolean,
    alone: () => boolean,
  ): Promise<BatchOutcome> {
    let first = true;
    const attempt = async () => {
      const pipelined = first ? slot.sending : null;
      if (!first && alone()) {
        // A retry with nothing after it in flight takes in what arrived
        // meanwhile (up to a full batch), as a fresh read would.
        const fresh = await this.read(slot.from, [], signal);
        if (fresh)
          Object.assign(slot, { ...fresh, quarantined: slot.quarantined + fresh.quarantined, sending: slot.sending });
      }
      first = false;
      this.isolated = 0;
      let outcome: BatchOutcome = { ...NO_OUTCOME, quarantined: slot.quarantined };
      if (slot.good.length > 0) outcome = addOutcomes(outcome, await this.deliver(slot, pipelined, signal));
      this.hooks.succeeded(slot, outcome);
      return outcome;
    };
    try {
      if (!retry) return await attempt();
      return await this.retried(attempt, { count: slot.count, lastSeq: slot.lastSeq }, signal);
    } finally {
      if (slot.sending) this.inFlight = Math.max(0, this.inFlight - 1);
    }
  }

  private async deliver(
    slot: InFlightBatch,
    pipelined: Promise<SinkResult> | null,
    signal: AbortSignal,
  ): Promise<BatchOutcome> {
    if (pipelined) {
      try {
        return this.apply(slot.good, slot.state, await raceAbort(pipelined, signal));
      } catch (error) {
        if (!(error instanceof SinkError) || signal.aborted) throw error;
        // Its predecessor is settled now (the remote waited for it in vain):
        // the condition has done its job, so send again without it.
        if (error instanceof RemoteOutOfOrderError)
          return await this.send(eventsOf(slot), slot.state, slot.backlog, signal);
        if (error.poison) return await this.split(eventsOf(slot), slot.state, slot.backlog, signal, error);
        throw error;
      }
    }
    return await this.send(eventsOf(slot), slot.state, slot.backlog, signal);
  }

  private async send(
    events: StoredEvent[],
    state: StateSnapshot | null,
    backlog: number,
    signal: AbortSignal,
  ): Promise<BatchOutcome> {
    let result: SinkResult;
    try {
      const sending = this.postEvents(events, state, backlog, signal);
      await this.commitDeferred();
      result = await raceAbort(sending, signal);
    } catch (error) {
      if (!(error instanceof SinkError) || !error.poison || signal.aborted) throw error;
      return await this.split(events, state, backlog, signal, error);
    }
    return this.apply(events, state, result);
  }

  /** A refused batch whose content may be to blame: halves until the culprit is alone, then it is quarantined. */
  private async split(
    events: StoredEvent[],
    state: StateSnapshot | null,
    backlog: number,
    signal: AbortSignal,
    error: SinkError,
  ): Promise<BatchOutcome> {
    if (events.length === 1) {
      if (++this.isolated > MAX_ISOLATED_PER_ATTEMPT) throw error;
      const moved = this.ctx.quarantine.add([
        { event: events[0]!, reason: error.message, remoteStatus: error.remoteStatus },
      ]);
      this.ctx.logger.warn("event quarantined", { mode: this.mode, seq: events[0]!.seq, reason: error.message });
      return { ...NO_OUTCOME, quarantined: moved };
    }
    // Bisect: the half that passes is applied before the other is tried.
    const mid = Math.ceil(events.length / 2);
    const first = await this.send(events.slice(0, mid), state, backlog + events.length - mid, signal);
    const second = await this.send(events.slice(mid), first.stateSent ? null : state, backlog, signal);
    return addOutcomes(first, second);
  }

  private apply(events: readonly EventRef[], state: StateSnapshot | null, result: SinkResult): BatchOutcome {
    const { acked, rejected, duplicates, missing } = sortVerdicts(events, result);
    for (const e of acked) this.deferred.push(e);
    const quarantined = this.ctx.quarantine.add(rejected);
    if (rejected.length > 0)
      this.ctx.logger.warn("events quarantined", {
        mode: this.mode,
        count: rejected.length,
        first: rejected[0]!.reason,
      });
    for (const w of result.warnings ?? []) this.ctx.logger.warn("flush warning", { mode: this.mode, warning: w });
    const stateSent = state !== null && !(result.warnings?.length ?? 0);
    if (stateSent) this.sentState = stateKey(state);
    return { sent: events.length, acked: acked.length, duplicates, quarantined, missing, stateSent };
  }
}

const stateKey = (s: StateSnapshot) => `${s.ts} ${JSON.stringify(s.state)}`;

/** A slot's events as objects: decoded from the reader worker's JSON only when needed (a retry, a split, a sink that wants objects). */
function eventsOf(slot: InFlightBatch): StoredEvent[] {
  slot.events ??= JSON.parse(slot.json!) as StoredEvent[];
  return slot.events;
}

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

// Cancelling flush work: the reason a cycle was cut short (stop, stall,
// shutdown deadline) and a race that frees the worker from a sink that
// ignores its signal.
export class FlushCancelled extends Error {
  constructor(why: string) {
    super(`flush cancelled: ${why}`);
    this.name = "FlushCancelled";
  }
}

export function raceAbort<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(signal.reason);
  // A sink that ignores its signal must not hold the worker hostage.
  return new Promise((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    signal.addEventListener("abort", onAbort, { once: true });
    promise.then(
      (v) => {
        signal.removeEventListener("abort", onAbort);
        resolve(v);
      },
      (e) => {
        signal.removeEventListener("abort", onAbort);
        reject(e);
      },
    );
  });
}
