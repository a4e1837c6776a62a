// Where SSE replay pages are read: by a worker thread with its own read-only
// connection (replay-worker.ts), which reads and frames each page and hands
// the event loop the bytes to enqueue. SQLite and framing are nearly all of a
// replay's work: off the loop, fifty clients replaying a large store cost the
// thread that answers ingest little more than the socket writes. Pages are
// read one at a time, in request order, so the streams take turns. A worker
// that fails hands over to the event loop (the replay scheduler).
import type { Logger } from "../lib/log.ts";
import type { Mode } from "../../supabase/functions/_shared/event-schema.ts";
import type { ReplayAnswer } from "./replay-page.ts";

export interface ReplayPage {
  /** The framed events, encoded. */
  bytes: Uint8Array;
  lastSeq: number;
  /** Every event up to throughSeq was read. */
  caughtUp: boolean;
}

export interface ReplayReader {
  /** The next page of `mode` after `afterSeq`, up to `throughSeq` (the store's durable seq); null once the worker failed. */
  page(mode: Mode, afterSeq: number, throughSeq: number): Promise<ReplayPage | null>;
  close(): void;
}

export function startReplayReader(options: { path: string; logger: Logger }): ReplayReader {
  // smol: a smaller heap for a thread that holds one page at a time.
  const worker = new Worker(new URL("./replay-worker.ts", import.meta.url).href, { smol: true } as WorkerOptions);
  // The thread must not keep the process alive on its own.
  (worker as unknown as { unref(): void }).unref();
  worker.postMessage({ path: options.path });
  const pending = new Map<number, (page: ReplayPage | null) => void>();
  let next = 0;
  let broken = false;
  const fail = (error: Error | null) => {
    if (!broken && error)
      options.logger.error("SSE replay worker failed: replaying on the event loop from now on", { error });
    broken = true;
    for (const resolve of pending.values()) resolve(null);
    pending.clear();
  };
  worker.onmessage = (message: MessageEvent<ReplayAnswer>) => {
    const answer = message.data;
    const resolve = pending.get(answer.id);
    if (!resolve) return;
    pending.delete(answer.id);
    if (!answer.ok) {
      fail(new Error(`SSE replay worker: ${answer.error}`));
      resolve(null);
      return;
    }
    resolve({ bytes: answer.bytes, lastSeq: answer.lastSeq, caughtUp: answer.caughtUp });
  };
  worker.onerror = (event) => fail(new Error(`SSE replay worker: ${event.message}`));
  return {
    page(mode, afterSeq, throughSeq) {
      if (broken) return Promise.resolve(null);
      const id = ++next;
      return new Promise((resolve) => {
        pending.set(id, resolve);
        worker.postMessage({ id, mode, afterSeq, throughSeq });
      });
    },
    close() {
      fail(null);
      // The worker closes its connection itself, after the page it may be
      // reading: a thread terminated mid-read would keep its read mark, and
      // the store's closing checkpoint could not truncate the WAL.
      worker.postMessage({ close: true });
      const backstop = setTimeout(() => worker.terminate(), 2_000);
      (backstop as unknown as { unref?(): void }).unref?.();
    },
  };
}
