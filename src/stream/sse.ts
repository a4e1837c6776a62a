// One Server-Sent Events stream: replay from the client's position, then live.
// The stream is a cursor: while it is behind it pages through SQLite, pulled
// only as fast as the socket drains, one small page at a time, read by the
// replay worker (replay-reader.ts) or, without one, in a turn of the replay
// scheduler (replay-scheduler.ts), so that replays share the event loop with
// requests, commits and each other; once caught up it takes events from the
// hub, coalescing each client's pending events into one write every few ms.
// Memory per client is bounded (about twice maxBufferedBytes: coalesced plus
// queued): a live burst bigger than the bound sends the stream back to paging
// from SQLite, and a client whose queued bytes pass the bound, or that takes
// nothing for stallMs while data waits, is cut off; so is the stream with the
// largest backlog when all streams together hold more than their shared
// budget (buffer-budget.ts). Live bytes are encoded once per published group
// and shared by every stream, so a stalled client holds references, not
// copies. A client cut off resumes with Last-Event-ID. A position beyond the newest seq (a database restored from a
// backup, a client of another box) is answered with an `event: reset`
// carrying the newest seq, then the stream goes on live from there. Heartbeats
// are `:` comments, or `event: heartbeat` for a client that asks
// (EventSource hides comments, so only events let a page notice a hung link).
import type { BudgetEntry, BufferBudget } from "./buffer-budget.ts";
import type { Hub } from "./hub.ts";
import { framePage, LOOP_PAGE } from "./replay-page.ts";
import type { ReplayReader } from "./replay-reader.ts";
import { type ReplayScheduler, sharedReplayScheduler } from "./replay-scheduler.ts";
import type { Mode } from "../../supabase/functions/_shared/event-schema.ts";
import type { EventStore, StoredEvent } from "../store/store.ts";

export const STREAM_CLOSE_REASONS = ["client", "slow", "shutdown"] as const;
export type StreamCloseReason = (typeof STREAM_CLOSE_REASONS)[number];

export interface StreamOptions {
  store: EventStore;
  hub: Hub;
  mode: Mode;
  /** Replay events after this seq; null means live only. */
  after: number | null;
  /** Aborted when the client goes away. */
  signal: AbortSignal;
  /** Aborted when the service stops: the stream ends cleanly. */
  shutdown?: AbortSignal;
  heartbeatMs: number;
  /** Heartbeats as `event: heartbeat` (data {newest_seq, interval_ms}) instead of `:` comments. */
  heartbeatEvents?: boolean;
  /** A client that takes no byte for this long while data waits is cut off (default 15 s). */
  stallMs?: number;
  /** Epoch ms, for the stall check (default Date.now). */
  now?: () => number;
  retryMs: number;
  /** Unsent bytes a client may have queued before it is cut off. */
  maxBufferedBytes: number;
  coalesceMs: number;
  /** The bound on what all streams hold together (none when absent). */
  budget?: BufferBudget;
  /** Reads replay pages off the event loop (default: on it, in turns of replayScheduler). */
  replayReader?: ReplayReader;
  /** Where replay pages take turns on the loop (default: one scheduler for every stream of the process). */
  replayScheduler?: ReplayScheduler;
  /** Called once when the stream ends, for whatever reason. */
  onClose?: (reason: StreamCloseReason) => void;
}

// Bytes the stream queue holds before it stops pulling replay pages. Bun moves
// queued chunks into the socket as fast as the kernel takes them, so for a
// reading client the queue stays near empty.
const HIGH_WATER_MARK = 64 * 1024;
const encoder = new TextEncoder();

export function formatEvent(e: StoredEvent): string {
  return `id: ${e.seq}\ndata: ${JSON.stringify(e)}\n\n`;
}

// Every live stream receives the same event objects from the hub: format each
// once, not once per client (100 clients made JSON.stringify the hot spot).
const formattedLive = new WeakMap<StoredEvent, string>();
function formatLive(e: StoredEvent): string {
  let text = formattedLive.get(e);
  if (text === undefined) {
    text = formatEvent(e);
    formattedLive.set(e, text);
  }
  return text;
}

// And each published group as one encoded chunk that every stream up to date
// enqueues as it is: a thousand streams hold references to one buffer, not a
// thousand copies (the bytes of a 100-event batch once, not per client).
const encodedGroups = new WeakMap<readonly StoredEvent[], Uint8Array>();
function encodeGroup(events: readonly StoredEvent[]): Uint8Array {
  let bytes = encodedGroups.get(events);
  if (bytes === undefined) {
    let text = "";
    for (const e of events) text += formatLive(e);
    bytes = encoder.encode(text);
    encodedGroups.set(events, bytes);
  }
  return bytes;
}

/**
 * The signal for a position beyond the newest stored seq: the client's
 * position is invalid here (restored or replaced database). `id:` moves an
 * EventSource's Last-Event-ID to the newest seq, so its own reconnects resume
 * from there; the client should drop what it holds past `newest_seq` and
 * resync (state, newest events).
 */
export function formatReset(newestSeq: number, requestedSeq: number): string {
  return `id: ${newestSeq}\nevent: reset\ndata: ${JSON.stringify({ newest_seq: newestSeq, requested_seq: requestedSeq })}\n\n`;
}

export const SSE_HEADERS = {
  "content-type": "text/event-stream; charset=utf-8",
  "cache-control": "no-cache, no-transform",
  connection: "keep-alive",
  "x-accel-buffering": "no",
};

/**
 * The stream's state (where it is, what is pending, its timers) and the steps
 * that move it: replay a page, take live events, coalesce, beat, finish.
 */
class EventStream {
  private readonly stallMs: number;
  private readonly now: () => number;
  /** The newest seq stored when the stream opened. */
  private readonly newest: number;
  /** The client's position is past `newest`: it gets an `event: reset` first. */
  private readonly beyond: boolean;
  /** Newest seq queued or pending. */
  private cursor: number;
  /** Newest seq enqueued. */
  private written: number;
  private replaying: boolean;
  /** Live chunks gathered for the next write (shared with other streams: never modified). */
  private pending: Uint8Array[] = [];
  private pendingBytes = 0;
  private flushTimer: ReturnType<typeof setTimeout> | null = null;
  private heartbeat: ReturnType<typeof setInterval> | null = null;
  private unsubscribe: (() => void) | null = null;
  private done = false;
  private enqueuedBytes = 0;
  private consumedAtLastBeat = -1;
  /** A replay turn is requested and has not run yet. */
  private turnRequested = false;
  /** A page is being read by the replay worker. */
  private reading = false;
  /** The replay worker failed: pages are read on the loop. */
  private readerFailed = false;
  /** Resolves the pull() waiting for the requested turn. */
  private pulled: (() => void) | null = null;
  private budgetEntry: BudgetEntry | null = null;
  /** Bytes of the latest enqueue. */
  private lastEnqueued = 0;
  private lastProgressAt: number;
  private controller!: ReadableStreamDefaultController<Uint8Array>;

  constructor(private readonly options: StreamOptions) {
    this.newest = options.store.lastSeq(options.mode);
    // A position past the newest seq but below this start's range comes from
    // an earlier store or start (a rebuilt or restored store): every event
    // this store has or will have past it is ahead in this range, so the
    // stream goes on live, with no reset. Past the range's start it is a
    // position this store never gave: a reset.
    this.beyond =
      options.after !== null &&
      options.after > this.newest &&
      options.after >= options.store.currentRange(options.mode).start_seq;
    this.cursor = options.after === null || this.beyond ? this.newest : options.after;
    this.written = this.cursor;
    this.replaying = options.after !== null && !this.beyond;
    this.now = options.now ?? Date.now;
    this.lastProgressAt = this.now();
    this.stallMs = options.stallMs ?? 15_000;
  }

  readable(): ReadableStream<Uint8Array> {
    return new ReadableStream<Uint8Array>(
      {
        start: (c) => this.start(c),
        pull: () => this.pull(),
        cancel: () => this.finish("client"),
      },
      { highWaterMark: HIGH_WATER_MARK, size: (chunk) => chunk?.byteLength ?? 0 },
    );
  }

  private start(c: ReadableStreamDefaultController<Uint8Array>): void {
    const { signal, shutdown, hub, mode } = this.options;
    this.controller = c;
    if (signal.aborted || shutdown?.aborted) {
      this.finish(signal.aborted ? "client" : "shutdown");
      return;
    }
    signal.addEventListener("abort", this.onAbort, { once: true });
    shutdown?.addEventListener("abort", this.onShutdown, { once: true });
    this.budgetEntry =
      this.options.budget?.join({
        held: () => (this.done ? 0 : this.queuedBytes() + this.pendingBytes),
        backlog: () => (this.done ? 0 : Math.max(0, this.queuedBytes() - this.lastEnqueued)),
        cut: () => this.finish("slow"),
      }) ?? null;
    this.unsubscribe = hub.subscribe(mode, this.onLive);
    this.heartbeat = setInterval(this.beat, this.options.heartbeatMs);
    this.enqueue(`retry: ${this.options.retryMs}\n\n`);
    if (this.beyond) this.enqueue(formatReset(this.newest, this.options.after!));
    // A first heartbeat at once: the client knows from the start that they come, and how often.
    if (this.options.heartbeatEvents) this.enqueue(this.heartbeatText());
  }

  private queuedBytes(): number {
    return HIGH_WATER_MARK - (this.controller.desiredSize ?? HIGH_WATER_MARK);
  }

  private finish(reason: StreamCloseReason): void {
    if (this.done) return;
    this.done = true;
    this.budgetEntry?.leave();
    this.unsubscribe?.();
    if (this.flushTimer) clearTimeout(this.flushTimer);
    if (this.heartbeat) clearInterval(this.heartbeat);
    this.options.signal.removeEventListener("abort", this.onAbort);
    this.options.shutdown?.removeEventListener("abort", this.onShutdown);
    this.pending = [];
    this.pendingBytes = 0;
    try {
      // Erroring (not closing) drops the queued bytes and aborts the
      // connection; closing would keep them until a stuck client reads.
      if (reason === "slow" || (reason === "shutdown" && this.queuedBytes() > 0)) this.controller.error();
      else this.controller.close();
    } catch {
      // already closed or cancelled by the runtime
    }
    this.options.onClose?.(reason);
  }

  private readonly onAbort = () => this.finish("client");
  private readonly onShutdown = () => this.finish("shutdown");

  private enqueue(data: string | readonly Uint8Array[]): void {
    const chunks = typeof data === "string" ? [encoder.encode(data)] : data;
    let bytes = 0;
    for (const chunk of chunks) {
      this.controller.enqueue(chunk);
      bytes += chunk.byteLength;
    }
    this.enqueuedBytes += bytes;
    this.lastEnqueued = bytes;
    this.budgetEntry?.update();
  }

  /** Writes live data; a client that lets it pile up is cut off. */
  private writeLive(data: string | readonly Uint8Array[]): void {
    if (this.done) return;
    this.enqueue(data);
    if (this.queuedBytes() > this.options.maxBufferedBytes) this.finish("slow");
  }

  /**
   * The queue has room: while replaying, the next page comes in a turn of the
   * scheduler, and the stream asks for no more until then.
   */
  private pull(): Promise<void> | undefined {
    if (!this.replaying || this.done) return;
    if (this.options.replayReader && !this.readerFailed) return this.readPage(this.options.replayReader);
    return new Promise<void>((resolve) => {
      this.pulled = resolve;
      this.requestTurn();
    });
  }

  /**
   * A page from the replay worker, enqueued in a turn of the scheduler (its
   * socket write is the loop's share of the work); the stream asks for no
   * more until then.
   */
  private async readPage(reader: ReplayReader): Promise<void> {
    if (this.reading) return;
    this.reading = true;
    const { store, mode } = this.options;
    const through = store.lastSeq(mode);
    const page = await reader.page(mode, this.cursor, through);
    if (page === null) {
      this.reading = false;
      this.readerFailed = true;
      if (this.replaying && !this.done) this.requestTurn();
      return;
    }
    let again = false;
    await new Promise<void>((resolve) => {
      (this.options.replayScheduler ?? sharedReplayScheduler).request(() => {
        this.reading = false;
        resolve();
        if (!this.replaying || this.done) return 0;
        // Every event up to `through` that exists was sent (some may have been
        // pruned): the position is `through`. In this synchronous step, with
        // the page's enqueue, the seam is exact: if nothing was stored since
        // the read, every later event comes from the hub.
        this.cursor = page.caughtUp ? Math.max(page.lastSeq, through) : page.lastSeq;
        this.written = this.cursor;
        if (page.caughtUp && this.cursor >= store.lastSeq(mode)) this.replaying = false;
        if (page.bytes.byteLength > 0) this.enqueue([page.bytes]);
        // Nothing framed and still behind (stored meanwhile): an enqueue is what
        // would have asked for the next page.
        else again = this.replaying;
        return page.bytes.byteLength;
      });
    });
    if (again) await this.readPage(reader);
  }

  /** The stream went back to replaying (a live burst): read on while the queue has room. */
  private resumeReplay(): void {
    if (this.options.replayReader && !this.readerFailed) void this.readPage(this.options.replayReader);
    else this.requestTurn();
  }

  private requestTurn(): void {
    if (this.turnRequested) return;
    this.turnRequested = true;
    (this.options.replayScheduler ?? sharedReplayScheduler).request(this.turn);
  }

  private readonly turn = (): number => {
    this.turnRequested = false;
    const pulled = this.pulled;
    this.pulled = null;
    const before = this.enqueuedBytes;
    // The queue may have filled since the turn was asked for (a live burst sent
    // the stream back to replay): the next pull asks again.
    if ((this.controller.desiredSize ?? 0) > 0) this.replayStep();
    pulled?.();
    return this.enqueuedBytes - before;
  };

  /** One bounded page of catch-up from SQLite; runs only when the queue has room. */
  private replayStep(): void {
    if (!this.replaying || this.done) return;
    // Synchronous read: no commit can land between this page and
    // `replaying = false`, so the seam has no gap and no duplicate.
    // Each event comes as its JSON text, built by SQLite (formatEvent's data, unparsed).
    const { text, lastSeq, caughtUp } = framePage(
      this.options.store.listJson(this.options.mode, this.cursor, LOOP_PAGE.rows),
      this.cursor,
      LOOP_PAGE,
    );
    this.cursor = lastSeq;
    this.written = this.cursor;
    if (caughtUp) this.replaying = false;
    if (text !== "") this.enqueue(text);
  }

  private readonly flushPending = () => {
    this.flushTimer = null;
    if (this.pending.length === 0) return;
    const chunks = this.pending;
    this.pending = [];
    this.pendingBytes = 0;
    this.written = this.cursor;
    this.writeLive(chunks);
  };

  private readonly onLive = (events: StoredEvent[]) => {
    if (this.replaying || this.done) return; // the replay will read them from SQLite
    let chunk: Uint8Array;
    if (events.length > 0 && events[0]!.seq > this.cursor) {
      // The whole group is new to this stream (events come in seq order): the shared bytes.
      chunk = encodeGroup(events);
      this.cursor = events.at(-1)!.seq;
    } else {
      let text = "";
      for (const e of events) {
        if (e.seq <= this.cursor) continue;
        text += formatLive(e);
        this.cursor = e.seq;
      }
      if (text === "") return;
      chunk = encoder.encode(text);
    }
    this.pending.push(chunk);
    this.pendingBytes += chunk.byteLength;
    if (this.pendingBytes > this.options.maxBufferedBytes) {
      // A burst bigger than the buffer: drop it and page it from SQLite at
      // the pace the socket drains, rather than holding it in memory.
      this.pending = [];
      this.pendingBytes = 0;
      this.cursor = this.written;
      this.replaying = true;
      if (this.flushTimer) clearTimeout(this.flushTimer);
      this.flushTimer = null;
      if ((this.controller.desiredSize ?? 0) > 0) this.resumeReplay();
      return;
    }
    this.budgetEntry?.update();
    if (this.done) return;
    if (!this.flushTimer) this.flushTimer = setTimeout(this.flushPending, this.options.coalesceMs);
  };

  private readonly beat = () => {
    // Data waiting and not one byte taken for stallMs: the client is stuck.
    const consumed = this.enqueuedBytes - this.queuedBytes();
    const at = this.now();
    if (this.queuedBytes() === 0 || consumed !== this.consumedAtLastBeat) this.lastProgressAt = at;
    else if (at - this.lastProgressAt >= this.stallMs) {
      this.finish("slow");
      return;
    }
    this.consumedAtLastBeat = consumed;
    // Pending live events first: a heartbeat never overtakes data.
    if (this.flushTimer) {
      clearTimeout(this.flushTimer);
      this.flushPending();
      if (this.done) return;
    }
    this.writeLive(this.heartbeatText());
  };

  private heartbeatText(): string {
    const { store, mode, heartbeatMs } = this.options;
    return this.options.heartbeatEvents
      ? `event: heartbeat\ndata: {"newest_seq":${store.lastSeq(mode)},"interval_ms":${heartbeatMs}}\n\n`
      : ":\n\n";
  }
}

export function openEventStream(options: StreamOptions): ReadableStream<Uint8Array> {
  return new EventStream(options).readable();
}
