// One SSE replay page: how many rows and bytes, and how they are framed as
// SSE messages; the same on the event loop (sse.ts) and on the replay worker
// (replay-worker.ts), and what the worker answers.
export interface PageSize {
  rows: number;
  bytes: number;
}

/** A page read on the event loop: about half a millisecond of SQLite and framing, and what the queue holds. */
export const LOOP_PAGE: PageSize = { rows: 128, bytes: 64 * 1024 };
/** A page read by the worker: the loop only enqueues it, so fewer, larger pages (fewer round trips). */
export const WORKER_PAGE: PageSize = { rows: 512, bytes: 256 * 1024 };

export interface FramedPage {
  text: string;
  /** Seq of the last event framed (afterSeq when none). */
  lastSeq: number;
  /** Every event up to the page's bound was read: the replay has caught up with it. */
  caughtUp: boolean;
}

/** Frames a page read with limit `size.rows` as SSE messages, up to `size.bytes`. */
export function framePage(page: [seq: number, json: string][], afterSeq: number, size: PageSize): FramedPage {
  let text = "";
  let taken = 0;
  let lastSeq = afterSeq;
  for (const [seq, json] of page) {
    text += `id: ${seq}\ndata: ${json}\n\n`;
    lastSeq = seq;
    taken++;
    if (text.length >= size.bytes) break;
  }
  return { text, lastSeq, caughtUp: taken === page.length && page.length < size.rows };
}

/** A worker's answer to one page request. */
export type ReplayAnswer =
  | { id: number; ok: true; bytes: Uint8Array; lastSeq: number; caughtUp: boolean }
  | { id: number; ok: false; error: string };
