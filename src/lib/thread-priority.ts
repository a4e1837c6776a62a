// Worker threads that read SQLite for the event loop (the flush reader, the
// SSE replay reader) run at a lower priority: when the cores are busy, the
// loop answering ingest runs first.
import { readlinkSync } from "node:fs";
import { setPriority } from "node:os";

/** Nice 10 for the calling thread alone (Linux: a thread is a task with its own nice); best effort. */
export function lowerThreadPriority(): void {
  try {
    const tid = Number(readlinkSync("/proc/thread-self").split("/").pop());
    if (Number.isSafeInteger(tid) && tid > 0) setPriority(tid, 10);
  } catch {
    // not Linux, or not allowed: same priority as the event loop
  }
}
