// One Server-Sent Events stream: replay from the client's position, then live.
// The stream is a cursor: while it is behind it pages through SQLite, pulled
// only as fast as the socket drains; once caught up it takes events from the
// hub, coalescing each client's pending events into one write every few ms.
// Memory per client is bounded (about twice maxBufferedBytes: coalesced plus
// queued): a live burst bigger than the bound sends the stream back to paging
// from SQLite, and a client whose queued bytes pass the bound, or that takes
// nothing for stallMs while data waits, is cut off. It resumes with
// Last-Event-ID. A position beyond the newest seq (a database restored from a
// backup, a client of another box) is answered with an `event: reset`
// carrying the newest seq, then the stream goes on live from there. Heartbeats
// are `:` comments, or `event: heartbeat` for a client that asks
// (EventSource hides comments, so only events let a page notice a hung link).
import type { Hub } from "./hub.ts";
import type { Mode } from "../domain/schema.ts";
import type { EventStore, ZoeEvent } from "../store/store.ts";

export type StreamCloseReason = "client" | "slow" | "shutdown";

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
  /** Called once when the stream ends, for whatever reason. */
  onClose?: (reason: StreamCloseReason) => void;
}

// Bytes the stream queue holds before it stops pulling replay pages. Bun moves
// queued chunks into the socket as fast as the kernel takes them, so for a
// reading client the queue stays near empty.
const HIGH_WATER_MARK = 64 * 1024;
const REPLAY_ROWS = 500;
const REPLAY_BYTES = 256 * 1024;
const encoder = new TextEncoder();

export function formatEvent(e: ZoeEvent): string {
  return `id: ${e.seq}\ndata: ${JSON.stringify(e)}\n\n`;
}

// Every live stream receives the same event objects from the hub: format each
// once, not once per client (100 clients made JSON.stringify the hot spot).
const formattedLive = new WeakMap<ZoeEvent, string>();
function formatLive(e: ZoeEvent): string {
  let text = formattedLive.get(e);
  if (text === undefined) {
    text = formatEvent(e);
    formattedLive.set(e, text);
  }
  return text;
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

export function openEventStream(options: StreamOptions): ReadableStream<Uint8Array> {
  const { store, hub, mode, signal, shutdown } = options;
  // `cursor`: newest seq queued or pending; `written`: newest seq enqueued.
  const newest = store.lastSeq(mode);
  const beyond = options.after !== null && options.after > newest;
  let cursor = options.after === null || beyond ? newest : options.after;
  let written = cursor;
  let replaying = options.after !== null && !beyond;
  let pending = "";
  let flushTimer: ReturnType<typeof setTimeout> | null = null;
  let heartbeat: ReturnType<typeof setInterval> | null = null;
  let unsubscribe: (() => void) | null = null;
  let done = false;
  let enqueuedBytes = 0;
  let consumedAtLastBeat = -1;
  const now = options.now ?? Date.now;
  let lastProgressAt = now();
  const stallMs = options.stallMs ?? 15_000;
  let controller!: ReadableStreamDefaultController<Uint8Array>;

  const queuedBytes = () => HIGH_WATER_MARK - (controller.desiredSize ?? HIGH_WATER_MARK);

  const finish = (reason: StreamCloseReason) => {
    if (done) return;
    done = true;
    unsubscribe?.();
    if (flushTimer) clearTimeout(flushTimer);
    if (heartbeat) clearInterval(heartbeat);
    signal.removeEventListener("abort", onAbort);
    shutdown?.removeEventListener("abort", onShutdown);
    pending = "";
    try {
      // Erroring (not closing) drops the queued bytes and aborts the
      // connection; closing would keep them until a stuck client reads.
      if (reason === "slow" || (reason === "shutdown" && queuedBytes() > 0)) controller.error();
      else controller.close();
    } catch {
      // already closed or cancelled by the runtime
    }
    options.onClose?.(reason);
  };
  const onAbort = () => finish("client");
  const onShutdown = () => finish("shutdown");

  const enqueue = (text: string) => {
    const bytes = encoder.encode(text);
    enqueuedBytes += bytes.byteLength;
    controller.enqueue(bytes);
  };

  /** Writes live data; a client that lets it pile up is cut off. */
  const writeLive = (text: string) => {
    if (done) return;
    enqueue(text);
    if (queuedBytes() > options.maxBufferedBytes) finish("slow");
  };

  /** One bounded page of catch-up from SQLite; runs only when the queue has room. */
  const replayStep = () => {
    if (!replaying || done) return;
    // Synchronous read: no commit can land between this page and
    // `replaying = false`, so the seam has no gap and no duplicate.
    // Each event comes as its JSON text, built by SQLite (formatEvent's data, unparsed).
    const page = store.listJson(mode, cursor, REPLAY_ROWS);
    let text = "";
    let taken = 0;
    for (const [seq, json] of page) {
      text += `id: ${seq}\ndata: ${json}\n\n`;
      cursor = seq;
      taken++;
      if (text.length >= REPLAY_BYTES) break;
    }
    written = cursor;
    if (taken === page.length && page.length < REPLAY_ROWS) replaying = false;
    if (text !== "") enqueue(text);
  };

  const flushPending = () => {
    flushTimer = null;
    if (pending === "") return;
    const text = pending;
    pending = "";
    written = cursor;
    writeLive(text);
  };

  const onLive = (events: ZoeEvent[]) => {
    if (replaying || done) return; // the replay will read them from SQLite
    for (const e of events) {
      if (e.seq <= cursor) continue;
      pending += formatLive(e);
      cursor = e.seq;
    }
    if (pending === "") return;
    if (pending.length > options.maxBufferedBytes) {
      // A burst bigger than the buffer: drop it and page it from SQLite at
      // the pace the socket drains, rather than holding it in memory.
      pending = "";
      cursor = written;
      replaying = true;
      if (flushTimer) clearTimeout(flushTimer);
      flushTimer = null;
      if ((controller.desiredSize ?? 0) > 0) replayStep();
      return;
    }
    if (!flushTimer) flushTimer = setTimeout(flushPending, options.coalesceMs);
  };

  const beat = () => {
    // Data waiting and not one byte taken for stallMs: the client is stuck.
    const consumed = enqueuedBytes - queuedBytes();
    const at = now();
    if (queuedBytes() === 0 || consumed !== consumedAtLastBeat) lastProgressAt = at;
    else if (at - lastProgressAt >= stallMs) {
      finish("slow");
      return;
    }
    consumedAtLastBeat = consumed;
    // Pending live events first: a heartbeat never overtakes data.
    if (flushTimer) {
      clearTimeout(flushTimer);
      flushPending();
      if (done) return;
    }
    writeLive(heartbeatText());
  };
  const heartbeatText = () =>
    options.heartbeatEvents ? `event: heartbeat\ndata: {"newest_seq":${store.lastSeq(mode)},"interval_ms":${options.heartbeatMs}}\n\n` : ":\n\n";

  return new ReadableStream<Uint8Array>(
    {
      start(c) {
        controller = c;
        if (signal.aborted || shutdown?.aborted) {
          finish(signal.aborted ? "client" : "shutdown");
          return;
        }
        signal.addEventListener("abort", onAbort, { once: true });
        shutdown?.addEventListener("abort", onShutdown, { once: true });
        unsubscribe = hub.subscribe(mode, onLive);
        heartbeat = setInterval(beat, options.heartbeatMs);
        enqueue(`retry: ${options.retryMs}\n\n`);
        if (beyond) enqueue(formatReset(newest, options.after!));
        // A first heartbeat at once: the client knows from the start that they come, and how often.
        if (options.heartbeatEvents) enqueue(heartbeatText());
      },
      pull() {
        replayStep();
      },
      cancel() {
        finish("client");
      },
    },
    { highWaterMark: HIGH_WATER_MARK, size: (chunk) => chunk?.byteLength ?? 0 },
  );
}
