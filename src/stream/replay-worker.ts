// Worker thread of src/stream/replay-reader.ts: reads an SSE replay page on
// its own read-only connection and frames it, so the event loop gets bytes to
// enqueue. One page at a time, in arrival order: the streams take turns.
import { readlinkSync } from "node:fs";
import { setPriority } from "node:os";
import type { Mode } from "../../supabase/functions/_shared/event-schema.ts";
import { openReplaySource, type ReplaySource } from "../store/replay-source.ts";
import { framePage, type ReplayAnswer, WORKER_PAGE } from "./replay-page.ts";

declare const self: Worker & { close(): void };

let source: ReplaySource | null = null;
const encoder = new TextEncoder();

/** Nice 10 for this thread alone (Linux): when the cores are busy, the event loop answering ingest runs first. */
function lowerPriority(): void {
  try {
    const tid = Number(readlinkSync("/proc/thread-self").split("/").pop());
    if (Number.isSafeInteger(tid) && tid > 0) setPriority(tid, 10);
  } catch {
    // not Linux, or not allowed: same priority as the event loop
  }
}

self.onmessage = (
  message: MessageEvent<
    { path: string } | { close: true } | { id: number; mode: Mode; afterSeq: number; throughSeq: number }
  >,
) => {
  const data = message.data;
  if ("close" in data) {
    source?.close();
    source = null;
    self.close();
    return;
  }
  if ("path" in data) {
    lowerPriority();
    source = openReplaySource(data.path);
    return;
  }
  let answer: ReplayAnswer;
  try {
    const rows = source!.pageJson(data.mode, data.afterSeq, data.throughSeq, WORKER_PAGE.rows);
    const framed = framePage(rows, data.afterSeq, WORKER_PAGE);
    answer = {
      id: data.id,
      ok: true,
      bytes: encoder.encode(framed.text),
      lastSeq: framed.lastSeq,
      caughtUp: framed.caughtUp,
    };
  } catch (error) {
    answer = { id: data.id, ok: false, error: (error as Error)?.message ?? String(error) };
  }
  // The page's buffer moves to the event loop, not copied.
  if (answer.ok) postMessage(answer, [answer.bytes.buffer as ArrayBuffer]);
  else postMessage(answer);
};
