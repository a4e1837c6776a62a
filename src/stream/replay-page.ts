// One SSE replay page: how many rows and bytes, and how they are framed as
// SSE messages; the same on the event loop (sse.ts) and on the replay worker
// (replay-worker.ts), and what the worker answers.
/** Rows and bytes of one replay page: about half a millisecond of SQLite and framing, and what the queue holds. */
export const REPLAY_ROWS = 128;
export const REPLAY_BYTES = 64 * 1024;

export interface FramedPage {
  text: string;
  /** Seq of the last event framed (afterSeq when none). */
  lastSeq: number;
  /** Every event up to the page's bound was read: the replay has caught up with it. */
  caughtUp: boolean;
}

/** Frames a page read with limit REPLAY_ROWS as SSE messages, up to REPLAY_BYTES. */
export function framePage(page: [seq: number, json: string][], afterSeq: number): FramedPage {
  let text = "";
  let taken = 0;
  let lastSeq = afterSeq;
  for (const [seq, json] of page) {
    text += `id: ${seq}\ndata: ${json}\n\n`;
    lastSeq = seq;
    taken++;
    if (text.length >= REPLAY_BYTES) break;
  }
  return { text, lastSeq, caughtUp: taken === page.length && page.length < REPLAY_ROWS };
}

/** A worker's answer to one page request. */
export type ReplayAnswer =
  | { id: number; ok: true; bytes: Uint8Array; lastSeq: number; caughtUp: boolean }
  | { id: number; ok: false; error: string };
