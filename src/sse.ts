// One Server-Sent Events stream: replay from the client's position, then live.
// The stream is a cursor: while it is behind it pages through SQLite (pulled
// only as fast as the socket drains); once caught up it takes events from the
// hub, coalescing each client's pending events into one write every few ms.
// A client whose unsent bytes pass the bound is cut off and resumes later
// with Last-Event-ID, so one stuck reader never grows the server's memory.
import type { Hub } from "./hub.ts";
import type { Mode } from "./schema.ts";
import type { EventStore, ZoeEvent } from "./store.ts";

export interface StreamOptions {
  store: EventStore;
  hub: Hub;
  mode: Mode;
  /** Replay events after this seq; null means live only. */
  after: number | null;
  signal: AbortSignal;
  heartbeatMs: number;
  retryMs: number;
  maxBufferedBytes: number;
  coalesceMs: number;
  /** Called once when the stream ends, for whatever reason. */
  onClose?: (reason: "client" | "slow" | "shutdown") => void;
}

const REPLAY_PAGE = 500;
const encoder = new TextEncoder();

export function formatEvent(e: ZoeEvent): string {
  return `id: ${e.seq}\ndata: ${JSON.stringify(e)}\n\n`;
}

export const SSE_HEADERS = {
  "content-type": "text/event-stream; charset=utf-8",
  "cache-control": "no-cache, no-transform",
  connection: "keep-alive",
  "x-accel-buffering": "no",
};

export function openEventStream(options: StreamOptions): ReadableStream<Uint8Array> {
  const { store, hub, mode, signal } = options;
  let cursor = options.after ?? store.lastSeq(mode);
  let replaying = options.after !== null;
  let pending = "";
  let flushTimer: ReturnType<typeof setTimeout> | null = null;
  let heartbeat: ReturnType<typeof setInterval> | null = null;
  let unsubscribe: (() => void) | null = null;
  let done = false;
  let controller!: ReadableStreamDefaultController<Uint8Array>;

  const finish = (reason: "client" | "slow" | "shutdown") => {
    if (done) return;
    done = true;
    unsubscribe?.();
    if (flushTimer) clearTimeout(flushTimer);
    if (heartbeat) clearInterval(heartbeat);
    signal.removeEventListener("abort", onAbort);
    try {
      controller.close();
    } catch {
      // already closed or cancelled by the runtime
    }
    options.onClose?.(reason);
  };
  const onAbort = () => finish("client");

  const write = (text: string) => {
    if (done) return;
    controller.enqueue(encoder.encode(text));
    // desiredSize counts bytes the socket has not taken yet.
    if ((controller.desiredSize ?? 0) < -options.maxBufferedBytes) finish("slow");
  };

  const flushPending = () => {
    flushTimer = null;
    if (pending === "") return;
    const text = pending;
    pending = "";
    write(text);
  };

  const onLive = (events: ZoeEvent[]) => {
    if (replaying || done) return; // the replay will read them from SQLite
    for (const e of events) {
      if (e.seq <= cursor) continue;
      pending += formatEvent(e);
      cursor = e.seq;
    }
    if (pending.length > options.maxBufferedBytes) {
      finish("slow");
      return;
    }
    if (!flushTimer && pending !== "") {
      flushTimer = setTimeout(flushPending, options.coalesceMs);
    }
  };

  return new ReadableStream<Uint8Array>(
    {
      start(c) {
        controller = c;
        if (signal.aborted) {
          finish("client");
          return;
        }
        signal.addEventListener("abort", onAbort, { once: true });
        unsubscribe = hub.subscribe(mode, onLive);
        heartbeat = setInterval(() => write(":\n\n"), options.heartbeatMs);
        controller.enqueue(encoder.encode(`retry: ${options.retryMs}\n\n`));
      },
      pull() {
        if (!replaying || done) return;
        // Synchronous read: no commit can land between this page and the
        // `replaying = false` below, so the seam has no gap and no duplicate.
        const page = store.list(mode, { sinceSeq: cursor, limit: REPLAY_PAGE });
        if (page.length > 0) {
          cursor = page.at(-1)!.seq;
          write(page.map(formatEvent).join(""));
        }
        if (page.length < REPLAY_PAGE) replaying = false;
      },
      cancel() {
        finish("client");
      },
    },
    { highWaterMark: 64 * 1024, size: (chunk) => chunk.byteLength },
  );
}
