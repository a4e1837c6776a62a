// Background WAL checkpoints. SQLite's automatic checkpoint runs inside the
// COMMIT that takes the WAL past wal_autocheckpoint pages, on the event loop:
// copying ~1000 pages and two fsyncs stall every request in flight for
// several ms, which was most of the ingest and SSE p99. A worker thread with
// its own connection runs PASSIVE checkpoints every few ms instead (they never
// block the writer), so the commit path finds the WAL already backfilled; the
// automatic checkpoint stays as the backstop if the worker falls behind.
// Checkpoints only copy committed pages, so durability is unchanged.
// The worker checkpoints when enough was committed, not on a clock: each
// checkpoint with new pages costs two fsyncs (WAL, then the database) and
// copies every page touched since the last one, so at 100 commits a second a
// 5 ms clock cost more CPU than the commits, and an idle store woke the thread
// 200 times a second for nothing.
import { COMMITS, noteCommit, STATE, STOPPED, STOPPING, WORDS } from "./checkpoint-control.ts";

export interface CheckpointerOptions {
  /** The SQLite database file (WAL mode). */
  path: string;
  /** The longest committed pages wait for a checkpoint when fewer than a checkpoint's worth follow them. */
  intervalMs: number;
  /** How long stop() waits for the worker to close its connection. */
  stopTimeoutMs?: number;
}

export interface Checkpointer {
  /** The writer committed a transaction of `events` events: counts it, and wakes the worker when a checkpoint is due. */
  committed(events: number): void;
  /** Closes the worker's connection and ends the thread; synchronous so store.close() stays synchronous. */
  stop(): void;
}

export function startCheckpointer(options: CheckpointerOptions): Checkpointer {
  const control = new SharedArrayBuffer(WORDS * 4);
  const state = new Int32Array(control);
  const worker = new Worker(new URL("./checkpoint-worker.ts", import.meta.url).href);
  // The thread must not keep the process alive on its own.
  (worker as unknown as { unref(): void }).unref();
  worker.postMessage({ path: options.path, intervalMs: options.intervalMs, control });
  let stopped = false;
  return {
    committed(events) {
      noteCommit(state, events);
    },
    stop() {
      if (stopped) return;
      stopped = true;
      Atomics.store(state, STATE, STOPPING);
      Atomics.notify(state, STATE);
      Atomics.notify(state, COMMITS); // it may wait for commits
      // Wait (bounded) for the worker to close its connection: a connection
      // left open in this process would hold SQLite locks on the file.
      const deadline = performance.now() + (options.stopTimeoutMs ?? 2000);
      while (Atomics.load(state, STATE) !== STOPPED && performance.now() < deadline) {
        Atomics.wait(state, STATE, STOPPING, Math.max(1, deadline - performance.now()));
      }
      worker.terminate();
    },
  };
}
