// Worker thread of src/flush/reader.ts: reads a batch on its own read-only
// connection, checks each event against the shared schema, and encodes the
// good ones as a JSON array, so the event loop gets a string to send and the
// references it needs for the verdicts. One read at a time, in arrival order.
import { openQueueReader, type QueueReader } from "../store/queue-reader.ts";
import type { Mode, StoredEvent } from "../../supabase/functions/_shared/event-schema.ts";
import { schemaFailure } from "./batch.ts";
import type { QuarantineInput } from "./quarantine.ts";
import { lowerThreadPriority } from "../lib/thread-priority.ts";

/** What this worker answers to one read. */
export type WorkerAnswer =
  | {
      id: number;
      ok: true;
      count: number;
      lastSeq: number;
      ids: string[];
      seqs: number[];
      keys: string[];
      json: string;
      bad: QuarantineInput[];
    }
  | { id: number; ok: false; error: string };

declare const self: Worker;

let reader: QueueReader | null = null;

self.onmessage = (
  message: MessageEvent<
    { path: string } | { id: number; mode: Mode; limit: number; afterSeq: number; untilSeq: number }
  >,
) => {
  const data = message.data;
  if ("path" in data) {
    lowerThreadPriority();
    reader = openQueueReader(data.path);
    return;
  }
  let answer: WorkerAnswer;
  try {
    const rows = reader!.unflushed(data.mode, data.limit, data.afterSeq, data.untilSeq);
    const good: StoredEvent[] = [];
    const bad: QuarantineInput[] = [];
    for (const e of rows) {
      const failure = schemaFailure(e);
      if (failure) bad.push(failure);
      else good.push(e);
    }
    answer = {
      id: data.id,
      ok: true,
      count: rows.length,
      lastSeq: rows.at(-1)?.seq ?? data.afterSeq,
      ids: good.map((e) => e.id),
      seqs: good.map((e) => e.seq),
      keys: good.map((e) => e.idempotency_key),
      json: JSON.stringify(good),
      bad,
    };
  } catch (error) {
    answer = { id: data.id, ok: false, error: (error as Error)?.message ?? String(error) };
  }
  postMessage(answer);
};
