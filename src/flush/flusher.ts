// Ships unflushed events to the remote sink, one worker per mode
// (mode-worker.ts). This module composes them: it routes appends to the
// workers (a critical event wakes its mode at once, a full batch's worth
// coalesces into one request), restarts a stalled worker, reports status,
// and stops gracefully (a last flush within the deadline). The store is only read and marked here:
// ingest never waits on the remote.
import type { FlushSettings } from "../config.ts";
import type { Clock } from "../lib/clock.ts";
import { type Logger, silentLogger } from "../lib/log.ts";
import { type Scheduler, systemScheduler } from "../lib/scheduler.ts";
import { MODES, type Mode } from "../../supabase/functions/_shared/event-schema.ts";
import type { EventStore } from "../store/store.ts";
import { createMarketClock, type MarketClock } from "./market-clock.ts";
import { ModeWorker, type WorkerContext } from "./mode-worker.ts";
import type { Quarantine } from "./quarantine.ts";
import { type BatchReader, inlineReader } from "./reader.ts";
import type { Sink } from "./sink.ts";
import { FlushCancelled, raceAbort } from "./pipeline.ts";

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
  /** Where batches are read (default: on the event loop); e.g. startReaderWorker() for the edge sink. */
  reader?: BatchReader;
}

/** What the flusher reports per mode into /health. */
export interface FlushStatusSource {
  status(mode: Mode): Record<string, unknown>;
}

/** What the workers share, with the one flag only the flusher flips. */
type SharedContext = Omit<WorkerContext, "stopping"> & { stopping: boolean };

function sharedContext(options: FlusherOptions): SharedContext {
  return {
    store: options.store,
    sink: options.sink,
    quarantine: options.quarantine,
    clock: options.clock,
    config: options.config,
    scheduler: options.scheduler ?? systemScheduler,
    logger: options.logger ?? silentLogger,
    random: options.random ?? Math.random,
    reader: options.reader ?? inlineReader(options.store),
    market:
      options.marketClock ??
      createMarketClock({
        clock: options.clock,
        activeIntervalMs: options.config.activeIntervalMs,
        offHoursIntervalMs: options.config.offHoursIntervalMs,
        marketHours: options.config.marketHours,
      }),
    hard: new AbortController(),
    stopping: false,
  };
}

export class Flusher implements FlushStatusSource {
  private readonly ctx: SharedContext;
  private readonly workers = new Map<Mode, ModeWorker>();
  private readonly stopWatchdog = new AbortController();
  private unsubscribe: (() => void) | null = null;
  private stopped: Promise<{ left: number }> | null = null;

  constructor(options: FlusherOptions) {
    this.ctx = sharedContext(options);
    for (const mode of options.modes ?? MODES) this.workers.set(mode, new ModeWorker(mode, this.ctx));
    options.signal?.addEventListener(
      "abort",
      () => {
        this.ctx.stopping = true;
        this.ctx.hard.abort(new FlushCancelled("service aborted"));
        this.stopWatchdog.abort();
        for (const w of this.workers.values()) w.interrupt();
      },
      { once: true },
    );
  }

  start(): void {
    const critical = new Set(this.ctx.config.criticalSubtypes);
    this.unsubscribe = this.ctx.store.onAppend((events) => {
      const counts = new Map<Mode, { count: number; urgent: boolean }>();
      for (const e of events) {
        const c = counts.get(e.mode) ?? { count: 0, urgent: false };
        c.count++;
        if (this.ctx.config.criticalImmediate && critical.has(e.subtype)) c.urgent = true;
        counts.set(e.mode, c);
      }
      for (const [mode, c] of counts) this.workers.get(mode)?.appended(c.count, c.urgent);
    });
    for (const w of this.workers.values()) w.start();
    void this.watchdog();
  }

  requestFlush(mode: Mode, options: { urgent?: boolean } = {}): Promise<void> {
    return this.workers.get(mode)?.request(options.urgent ?? true) ?? Promise.resolve();
  }

  private async watchdog(): Promise<void> {
    const every = Math.max(1000, Math.floor(this.ctx.config.stallMs / 4));
    while (!this.ctx.stopping) {
      try {
        await this.ctx.scheduler.sleep(every, this.stopWatchdog.signal);
      } catch {
        return;
      }
      const now = this.ctx.clock.now();
      for (const w of this.workers.values()) {
        const idle = w.idleFor(now);
        if (this.ctx.stopping || idle <= this.ctx.config.stallMs || this.ctx.store.backlogUsage(w.mode).events === 0)
          continue;
        this.ctx.logger.warn("flusher stalled: restarting it", { mode: w.mode, idle_ms: idle });
        w.restart("stalled");
      }
    }
  }

  stop(): Promise<{ left: number }> {
    this.stopped ??= this.shutdown();
    return this.stopped;
  }

  private async shutdown(): Promise<{ left: number }> {
    this.ctx.stopping = true;
    this.stopWatchdog.abort();
    this.unsubscribe?.();
    return this.lastFlush([...this.workers.values()]);
  }

  /**
   * The graceful stop: let running cycles end, then one last flush per mode
   * (no backoff, stop at the first failure), all within the shutdown
   * deadline, after which sends in flight are aborted. Reports what is left.
   */
  private async lastFlush(workers: readonly ModeWorker[]): Promise<{ left: number }> {
    const ctx = this.ctx;
    const deadline = new AbortController();
    const timer = ctx.scheduler.sleep(ctx.config.shutdownMs, deadline.signal).then(
      () => ctx.hard.abort(new FlushCancelled(`shutdown deadline of ${ctx.config.shutdownMs} ms`)),
      () => {},
    );
    for (const w of workers) w.interrupt();
    const loops = workers.map((w) => w.finished());
    await raceAbort(Promise.all(loops), ctx.hard.signal).catch(() => {});
    // One last flush: no backoff, stop at the first failure or the deadline.
    for (const w of workers) {
      try {
        if (!ctx.hard.signal.aborted) await w.lastFlush(ctx.hard.signal);
      } catch (error) {
        if (!ctx.hard.signal.aborted) ctx.logger.warn("last flush failed", { mode: w.mode, error });
      }
      try {
        await w.commitDeferred();
      } catch (error) {
        ctx.logger.error("cannot mark flushed events", { mode: w.mode, error });
      }
    }
    deadline.abort();
    await timer;
    let left = 0;
    for (const w of workers) left += ctx.store.backlog(w.mode);
    return { left };
  }

  status(mode: Mode): Record<string, unknown> {
    const w = this.workers.get(mode);
    return w ? w.status() : { remote: this.ctx.sink.name, flusher: "disabled" };
  }
}

export function createFlusher(options: FlusherOptions): Flusher {
  return new Flusher(options);
}
