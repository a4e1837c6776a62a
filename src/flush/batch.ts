// One batch's local side: read the oldest unflushed events and check them
// against the shared schema, sort the remote's verdicts into acknowledged and
// rejected, and mark the acknowledged ones flushed. All of it in short slices:
// the flusher shares the one JS thread with ingest.
import { checkStoredEvent, type Mode, type StoredEvent } from "../domain/schema.ts";
import type { EventStore } from "../store/store.ts";
import type { QuarantineInput } from "./quarantine.ts";
import type { EventResult, SinkResult } from "./sink.ts";

/** What one batch (or one half of a bisected batch) came to. */
export interface Tally {
  sent: number;
  acked: number;
  duplicates: number;
  quarantined: number;
  missing: number;
  stateSent: boolean;
}
export const EMPTY_TALLY: Tally = { sent: 0, acked: 0, duplicates: 0, quarantined: 0, missing: 0, stateSent: false };
export const addTally = (a: Tally, b: Tally): Tally => ({
  sent: a.sent + b.sent,
  acked: a.acked + b.acked,
  duplicates: a.duplicates + b.duplicates,
  quarantined: a.quarantined + b.quarantined,
  missing: a.missing + b.missing,
  stateSent: a.stateSent || b.stateSent,
});

// The flusher shares the one JS thread with ingest: it reads, checks and marks
// a batch in slices of this many rows (about 0.4 ms of SQLite work each) and
// lets pending I/O run between them, so a POST never waits for a whole batch.
const SLICE = 100;
const yieldToLoop = () => new Promise<void>((resolve) => setImmediate(resolve));

export interface ReadBatch {
  /** Everything read, in seq order. */
  events: StoredEvent[];
  /** Those that pass the shared schema. */
  good: StoredEvent[];
  /** Those that do not, ready for the quarantine. */
  bad: QuarantineInput[];
}

/**
 * The oldest `limit` unflushed events of `mode` after seq `afterSeq` (the
 * batches before it are in flight or acknowledged), in seq order, read and
 * schema-checked a slice at a time. Appends between slices get higher seqs,
 * so the seq cursor misses none.
 */
export async function readBatch(store: EventStore, mode: Mode, limit: number, afterSeq: number, signal: AbortSignal): Promise<ReadBatch> {
  const events: StoredEvent[] = [];
  const good: StoredEvent[] = [];
  const bad: QuarantineInput[] = [];
  let after = afterSeq;
  for (let first = true; events.length < limit; first = false) {
    if (!first) {
      await yieldToLoop();
      // Cancelled meanwhile: nothing was sent, so stop here, as a send in flight would.
      signal.throwIfAborted();
    }
    const want = Math.min(SLICE, limit - events.length);
    const rows = store.unflushed(mode, want, { afterSeq: after });
    for (const e of rows) {
      events.push(e);
      const errors = checkStoredEvent(e);
      if (errors.length === 0) good.push(e);
      else bad.push({ event: e, reason: `fails the shared event schema locally: ${errors[0]!.path} ${errors[0]!.message}`, errors });
    }
    if (rows.length < want) break;
    after = rows.at(-1)!.seq;
  }
  return { events, good, bad };
}

/** Marks in slices, each its own short transaction; the first one at once. */
export async function markInSlices(store: EventStore, ids: string[]): Promise<void> {
  for (let i = 0; i < ids.length; i += SLICE) {
    if (i > 0) await yieldToLoop();
    store.markFlushed(ids.slice(i, i + SLICE));
  }
}

export interface Verdicts {
  /** Ids and seqs of events the remote stored (now or before). */
  acked: { ids: string[]; seqs: number[] };
  rejected: QuarantineInput[];
  duplicates: number;
  /** Events the remote gave no verdict for: they stay queued. */
  missing: number;
}

/** Sorts the remote's answer by event; verdicts for events not sent are ignored. */
export function sortVerdicts(events: StoredEvent[], result: SinkResult): Verdicts {
  const byKey = new Map(events.map((e) => [e.idempotency_key, e]));
  const ids: string[] = [];
  const seqs: number[] = [];
  const rejected: QuarantineInput[] = [];
  let duplicates = 0;
  for (const r of result.results as EventResult[]) {
    const e = byKey.get(r.idempotency_key);
    if (!e) continue;
    byKey.delete(r.idempotency_key);
    if (r.status === "rejected") {
      const first = r.errors?.[0];
      rejected.push({ event: e, reason: `rejected by remote${first ? `: ${first.path} ${first.message}` : ""}`, errors: r.errors ?? [] });
    } else {
      ids.push(e.id);
      seqs.push(e.seq);
      if (r.status === "duplicate") duplicates++;
    }
  }
  return { acked: { ids, seqs }, rejected, duplicates, missing: byKey.size };
}
