// Ships unflushed events to the remote sink, one worker per mode
// (mode-worker.ts). This module composes them: it routes appends to the
// workers (a critical event wakes its mode at once, a full batch's worth
// coalesces into one request), restarts a stalled worker, reports status,
// and stops gracefully (shutdown.ts). The store is only read and marked here:
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

export interface Flusher extends FlushStatusSource {
  start(): void;
  /** Asks for a flush; resolves when a flush that started after this call has ended. */
  requestFlush(mode: Mode, options?: { urgent?: boolean }): Promise<void>;
  /** Graceful stop within config.shutdownMs; resolves with what is left unflushed. */
  stop(): Promise<{ left: number }>;
}

/** What the workers share, with the one flag only the flusher flips. */
type SharedContext = Omit<WorkerContext, "stopping"> & { stopping: boolean };

function sharedContext(o: FlusherOptions): SharedContext {
  return {
    store: o.store,
    sink: o.sink,
    quarantine: o.quarantine,
    clock: o.clock,
    config: o.config,
    scheduler: o.scheduler ?? systemScheduler,
    logger: o.logger ?? silentLogger,
    random: o.random ?? Math.random,
    reader: o.reader ?? inlineReader(o.store),
    market:
      o.marketClock ??
      createMarketClock({
        clock: o.clock,
        activeIntervalMs: o.config.activeIntervalMs,
        offHoursIntervalMs: o.config.offHoursIntervalMs,
        marketHours: o.config.marketHours,
      }),
    hard: new AbortController(),
    stopping: false,
  };
}

class FlusherImpl implements Flusher {
  private readonly ctx: SharedContext;
  private readonly workers = new Map<Mode, ModeWorker>();
  private readonly stopWatchdog = new AbortController();
  private unsubscribe: (() => void) | null = null;
  private stopped: Promise<{ left: number }> | null = null;

  constructor(o: FlusherOptions) {
    this.ctx = sharedContext(o);
    for (const mode of o.modes ?? MODES) this.workers.set(mode, new ModeWorker(mode, this.ctx));
    o.signal?.addEventListener(
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
      const urgent = new Set<Mode>();
      for (const e of events) {
        const w = this.workers.get(e.mode);
        if (!w) continue;
        w.appended++;
        if (this.ctx.config.criticalImmediate && critical.has(e.subtype)) urgent.add(e.mode);
      }
      for (const [mode, w] of this.workers) {
        if (urgent.has(mode)) void w.request(true);
        else if (w.appended >= this.ctx.config.batchSize && !w.requested) void w.request(false);
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
    const every = Math.max(1000, Math.floor(this.ctx.config.stallMs / 4));
    while (!this.ctx.stopping) {
      try {
        await this.ctx.scheduler.sleep(every, this.stopWatchdog.signal);
      } catch {
        return;
      }
      const now = this.ctx.clock.now();
      for (const w of this.workers.values()) {
        if (
          this.ctx.stopping ||
          now - w.lastActivityAt <= this.ctx.config.stallMs ||
          this.ctx.store.backlogUsage(w.mode).events === 0
        )
          continue;
        this.ctx.logger.warn("flusher stalled: restarting it", { mode: w.mode, idle_ms: now - w.lastActivityAt });
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
    this.ctx.stopping = true;
    this.stopWatchdog.abort();
    this.unsubscribe?.();
    return shutdownWorkers(this.ctx, [...this.workers.values()]);
  }

  status(mode: Mode): Record<string, unknown> {
    const w = this.workers.get(mode);
    return w ? w.status() : { remote: this.ctx.sink.name, flusher: "disabled" };
  }
}

export function createFlusher(options: FlusherOptions): Flusher {
  return new FlusherImpl(options);
}

// The flusher's graceful stop: let running cycles end, then one last flush per
// mode (no backoff, stop at the first failure), all within the shutdown
// deadline, after which sends in flight are aborted. Reports what is left.
export async function shutdownWorkers(f: WorkerContext, workers: readonly ModeWorker[]): Promise<{ left: number }> {
  const deadline = new AbortController();
  const timer = f.scheduler.sleep(f.config.shutdownMs, deadline.signal).then(
    () => f.hard.abort(new FlushCancelled(`shutdown deadline of ${f.config.shutdownMs} ms`)),
    () => {},
  );
  for (const w of workers) w.interrupt();
  const loops = workers.map((w) => w.loop ?? Promise.resolve());
  await raceAbort(Promise.all(loops), f.hard.signal).catch(() => {});
  // One last flush: no backoff, stop at the first failure or the deadline.
  for (const w of workers) {
    try {
      if (!f.hard.signal.aborted) await w.lastFlush(f.hard.signal);
    } catch (error) {
      if (!f.hard.signal.aborted) f.logger.warn("last flush failed", { mode: w.mode, error });
    }
    try {
      await w.commitDeferred();
    } catch (error) {
      f.logger.error("cannot mark flushed events", { mode: w.mode, error });
    }
  }
  deadline.abort();
  await timer;
  let left = 0;
  for (const w of workers) left += f.store.backlog(w.mode);
  return { left };
}
