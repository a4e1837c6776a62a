// The last hour of what an operator looks at first, kept in memory for the
// dashboard's charts (GET /local/history): per mode, every interval, the
// backlog, the ingest rate, the drain rate, how long sends to the remote took
// and the age of the oldest unflushed event. A ring buffer of fixed size, so
// it costs the same after a week as after a minute; it starts empty after a
// restart (Prometheus keeps the long history, see ops/).
import type { Clock } from "../lib/clock.ts";
import { MODES, type Mode } from "../../supabase/functions/_shared/event-schema.ts";
import { type Sink, wrapSink } from "../flush/sink.ts";
import type { EventStore } from "../store/store.ts";

export interface HistoryOptions {
  store: EventStore;
  clock: Clock;
  /** Sampling interval (default 10 s). */
  intervalMs?: number;
  /** How far back samples are kept (default 1 h). */
  windowMs?: number;
  modes?: readonly Mode[];
}

interface ModeSample {
  backlog: number;
  ingestPerS: number;
  flushedPerS: number;
  flushMsAvg: number | null;
  flushMsMax: number | null;
  flushFailures: number;
  oldestUnflushedS: number;
}

interface Sample {
  t: number;
  modes: Map<Mode, ModeSample>;
}

/** GET /local/history's answer: one column per series, aligned on `t` (epoch ms, the end of each interval), oldest first. */
export interface HistoryView {
  mode: Mode;
  interval_ms: number;
  window_ms: number;
  t: number[];
  backlog: number[];
  ingest_per_s: number[];
  flushed_per_s: number[];
  /** Mean and longest send to the remote in each interval; null where nothing was sent. */
  flush_ms_avg: (number | null)[];
  flush_ms_max: (number | null)[];
  flush_failures: number[];
  oldest_unflushed_s: number[];
}

export interface History {
  readonly intervalMs: number;
  /** The same sink, its sends counted and timed into the current interval. */
  instrumentSink(sink: Sink): Sink;
  /** Closes the current interval into a sample (the timer calls it; tests too). */
  sample(): void;
  /** Samples every interval until `signal` aborts. */
  start(signal: AbortSignal): void;
  read(mode: Mode): HistoryView;
}

const round = (n: number, digits = 2) => Math.round(n * 10 ** digits) / 10 ** digits;

/** What happened to one mode's sends since the last sample. */
interface SendWindow {
  sends: number;
  totalMs: number;
  maxMs: number;
  failures: number;
  flushed: number;
}

const emptyWindow = (): SendWindow => ({ sends: 0, totalMs: 0, maxMs: 0, failures: 0, flushed: 0 });

/** The last `capacity` samples, oldest first; older ones are overwritten. */
class SampleRing {
  private readonly ring: (Sample | undefined)[];
  private next = 0;
  private size = 0;

  constructor(private readonly capacity: number) {
    this.ring = new Array(capacity);
  }

  push(sample: Sample): void {
    this.ring[this.next] = sample;
    this.next = (this.next + 1) % this.capacity;
    this.size = Math.min(this.capacity, this.size + 1);
  }

  *[Symbol.iterator](): Generator<Sample> {
    for (let i = 0; i < this.size; i++) yield this.ring[(this.next - this.size + i + this.capacity) % this.capacity]!;
  }
}

/** One mode's columns over the samples held. */
function viewOf(mode: Mode, samples: Iterable<Sample>, intervalMs: number, windowMs: number): HistoryView {
  const view: HistoryView = {
    mode,
    interval_ms: intervalMs,
    window_ms: windowMs,
    t: [],
    backlog: [],
    ingest_per_s: [],
    flushed_per_s: [],
    flush_ms_avg: [],
    flush_ms_max: [],
    flush_failures: [],
    oldest_unflushed_s: [],
  };
  for (const s of samples) {
    const v = s.modes.get(mode);
    if (!v) continue;
    view.t.push(s.t);
    view.backlog.push(v.backlog);
    view.ingest_per_s.push(v.ingestPerS);
    view.flushed_per_s.push(v.flushedPerS);
    view.flush_ms_avg.push(v.flushMsAvg);
    view.flush_ms_max.push(v.flushMsMax);
    view.flush_failures.push(v.flushFailures);
    view.oldest_unflushed_s.push(v.oldestUnflushedS);
  }
  return view;
}

/** The same sink, counting each send's time, failure and flushed events into its mode's window. */
function windowedSink(sink: Sink, windows: ReadonlyMap<Mode, SendWindow>): Sink {
  return wrapSink(sink, async (batch, send) => {
    const started = performance.now();
    const w = windows.get(batch.mode);
    try {
      const result = await send();
      if (w) for (const r of result.results) if (r.status !== "rejected") w.flushed++;
      return result;
    } catch (error) {
      if (w && !batch.signal.aborted) w.failures++;
      throw error;
    } finally {
      if (w) {
        const ms = performance.now() - started;
        w.sends++;
        w.totalMs += ms;
        w.maxMs = Math.max(w.maxMs, ms);
      }
    }
  });
}

export function createHistory(options: HistoryOptions): History {
  const { store, clock } = options;
  const intervalMs = options.intervalMs ?? 10_000;
  const windowMs = options.windowMs ?? 3_600_000;
  const modes = options.modes ?? MODES;
  const ring = new SampleRing(Math.max(1, Math.ceil(windowMs / intervalMs)));
  // What happened since the last sample.
  const windows = new Map(modes.map((m) => [m, emptyWindow()]));
  const lastSeq = new Map(modes.map((m) => [m, store.lastSeq(m)]));
  let lastAt = clock.now();

  const sample = () => {
    const now = clock.now();
    const seconds = Math.max(0.001, (now - lastAt) / 1000);
    lastAt = now;
    const values = new Map<Mode, ModeSample>();
    for (const mode of modes) {
      const w = windows.get(mode)!;
      const seq = store.lastSeq(mode);
      // Seqs are gapless per mode: their advance is the number of events stored.
      const stored = Math.max(0, seq - lastSeq.get(mode)!);
      lastSeq.set(mode, seq);
      const oldest = store.oldestUnflushedAt(mode);
      values.set(mode, {
        backlog: store.backlogUsage(mode).events,
        ingestPerS: round(stored / seconds),
        flushedPerS: round(w.flushed / seconds),
        flushMsAvg: w.sends > 0 ? round(w.totalMs / w.sends, 1) : null,
        flushMsMax: w.sends > 0 ? round(w.maxMs, 1) : null,
        flushFailures: w.failures,
        oldestUnflushedS: oldest ? round(Math.max(0, now - Date.parse(oldest)) / 1000, 1) : 0,
      });
      Object.assign(w, emptyWindow());
    }
    ring.push({ t: now, modes: values });
  };

  return {
    intervalMs,
    instrumentSink: (sink) => windowedSink(sink, windows),
    sample,
    start(signal) {
      if (signal.aborted) return;
      const timer = setInterval(sample, intervalMs);
      // History must never keep the process alive, nor outlive shutdown.
      timer.unref?.();
      signal.addEventListener("abort", () => clearInterval(timer), { once: true });
    },
    read: (mode) => viewOf(mode, ring, intervalMs, windowMs),
  };
}
