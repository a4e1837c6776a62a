// Worker thread of src/stream/replay-reader.ts: reads an SSE replay page on
// its own read-only connection and frames it, so the event loop gets bytes to
// enqueue. One page at a time, in arrival order: the streams take turns.
import type { Mode } from "../../supabase/functions/_shared/event-schema.ts";
import { openReplaySource, type ReplaySource } from "../store/replay-source.ts";
import { framePage, type ReplayAnswer, WORKER_PAGE } from "./replay-page.ts";
import { lowerThreadPriority } from "../lib/thread-priority.ts";

declare const self: Worker & { close(): void };

let source: ReplaySource | null = null;
const encoder = new TextEncoder();

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
    lowerThreadPriority();
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
