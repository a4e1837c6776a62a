// Where a batch is read: on the event loop (readBatch, in 100-row slices), or
// by a worker thread with its own read-only connection (reader-worker.ts),
// which also checks the events against the shared schema and encodes them as
// the JSON the Edge Function gets. The worker takes reading, checking and
// encoding (about two thirds of the service's work per batch) off the thread
// that answers ingest; a worker that fails hands over to the event loop.
import type { Logger } from "../lib/log.ts";
import type { Mode } from "../../supabase/functions/_shared/event-schema.ts";
import type { EventStore } from "../store/store.ts";
import { type ReadBatch, readBatch } from "./batch.ts";
import type { WorkerAnswer } from "./reader-worker.ts";

export interface BatchReader {
  /** The oldest `limit` unflushed events of `mode` after seq `afterSeq`, checked. */
  read(mode: Mode, limit: number, afterSeq: number, signal: AbortSignal): Promise<ReadBatch>;
}

export interface ReaderWorker extends BatchReader {
  close(): void;
}

export function inlineReader(store: EventStore): BatchReader {
  return { read: (mode, limit, afterSeq, signal) => readBatch(store, mode, limit, afterSeq, signal) };
}

export interface ReaderWorkerOptions {
  /** The store's database file. */
  path: string;
  /** Reads from here once the worker has failed. */
  fallback: BatchReader;
  /** The store's durable seq of a mode (EventStore.lastSeq): the worker reads no further. */
  lastSeq(mode: Mode): number;
  logger: Logger;
}

export function startReaderWorker(options: ReaderWorkerOptions): ReaderWorker {
  // smol: a smaller heap for a thread that holds one batch at a time.
  const worker = new Worker(new URL("./reader-worker.ts", import.meta.url).href, { smol: true } as WorkerOptions);
  // The thread must not keep the process alive on its own.
  (worker as unknown as { unref(): void }).unref();
  worker.postMessage({ path: options.path });
  const pending = new Map<number, { resolve: (b: ReadBatch) => void; reject: (e: Error) => void; mode: Mode }>();
  let next = 0;
  let broken: Error | null = null;
  const fail = (error: Error, quiet = false) => {
    if (!broken && !quiet)
      options.logger.error("flush reader worker failed: reading on the event loop from now on", { error });
    broken ??= error;
    for (const p of pending.values()) p.reject(error);
    pending.clear();
  };
  worker.onmessage = (message: MessageEvent<WorkerAnswer>) => {
    const answer = message.data;
    const p = pending.get(answer.id);
    if (!p) return;
    pending.delete(answer.id);
    if (!answer.ok) return p.reject(new Error(`flush reader worker: ${answer.error}`));
    const good = answer.ids.map((id, i) => ({
      id,
      mode: p.mode,
      seq: answer.seqs[i]!,
      idempotency_key: answer.keys[i]!,
    }));
    p.resolve({ count: answer.count, lastSeq: answer.lastSeq, good, events: null, json: answer.json, bad: answer.bad });
  };
  worker.onerror = (event) => fail(new Error(`flush reader worker: ${event.message}`));
  return {
    async read(mode, limit, afterSeq, signal) {
      if (!broken) {
        signal.throwIfAborted();
        const id = ++next;
        try {
          return await new Promise<ReadBatch>((resolve, reject) => {
            pending.set(id, { resolve, reject, mode });
            worker.postMessage({ id, mode, limit, afterSeq, untilSeq: options.lastSeq(mode) });
          });
        } catch (error) {
          fail(error as Error);
        }
      }
      return options.fallback.read(mode, limit, afterSeq, signal);
    },
    close() {
      fail(new Error("flush reader worker closed"), true);
      worker.terminate();
    },
  };
}
