// One batch's local side: read the oldest unflushed events and check them
// against the shared schema (here, on the event loop, or in the reader worker:
// reader.ts), sort the remote's verdicts into acknowledged and rejected, and
// mark the acknowledged ones flushed. All of it in short slices: the flusher
// shares the one JS thread with ingest.
import { checkStoredEvent, type Mode, type StoredEvent } from "../../supabase/functions/_shared/event-schema.ts";
import type { EventStore } from "../store/store.ts";
import type { QuarantineInput } from "./quarantine.ts";
import type { EventRef, EventResult, SinkResult } from "./sink.ts";

/** What one batch (or one half of a bisected batch) came to. */
export interface BatchOutcome {
  sent: number;
  acked: number;
  duplicates: number;
  quarantined: number;
  missing: number;
  stateSent: boolean;
}
export const NO_OUTCOME: BatchOutcome = {
  sent: 0,
  acked: 0,
  duplicates: 0,
  quarantined: 0,
  missing: 0,
  stateSent: false,
};
export const addOutcomes = (a: BatchOutcome, b: BatchOutcome): BatchOutcome => ({
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
  /** How many events were read (sent or not); the next read starts after `lastSeq`. */
  count: number;
  lastSeq: number;
  /** The events that pass the shared schema, in seq order: what is sent. */
  good: EventRef[];
  /** The same events as objects (read on the event loop), or null … */
  events: StoredEvent[] | null;
  /** … when they come as their JSON array instead (read and encoded by the reader worker). */
  json: string | null;
  /** Those that fail the schema, ready for the quarantine. */
  bad: QuarantineInput[];
}

/**
 * The oldest `limit` unflushed events of `mode` after seq `afterSeq` (the
 * batches before it are in flight or acknowledged), in seq order, read and
 * schema-checked a slice at a time. Appends between slices get higher seqs,
 * so the seq cursor misses none.
 */
export async function readBatch(
  store: EventStore,
  mode: Mode,
  limit: number,
  afterSeq: number,
  signal: AbortSignal,
): Promise<ReadBatch> {
  const good: StoredEvent[] = [];
  const bad: QuarantineInput[] = [];
  let count = 0;
  let after = afterSeq;
  for (let first = true; count < limit; first = false) {
    if (!first) {
      await yieldToLoop();
      // Cancelled meanwhile: nothing was sent, so stop here, as a send in flight would.
      signal.throwIfAborted();
    }
    const want = Math.min(SLICE, limit - count);
    const rows = store.unflushed(mode, want, { afterSeq: after });
    for (const e of rows) {
      const failure = schemaFailure(e);
      if (failure) bad.push(failure);
      else good.push(e);
    }
    count += rows.length;
    if (rows.length > 0) after = rows.at(-1)!.seq;
    if (rows.length < want) break;
  }
  return { count, lastSeq: after, good, events: good, json: null, bad };
}

/** Null when `e` passes the shared schema; else its quarantine entry. */
export function schemaFailure(e: StoredEvent): QuarantineInput | null {
  const errors = checkStoredEvent(e);
  return errors.length === 0
    ? null
    : { event: e, reason: `fails the shared event schema locally: ${errors[0]!.path} ${errors[0]!.message}`, errors };
}

// Marks go by seq range (one UPDATE on the unflushed index) in slices of this
// many events, each its own short transaction: ~1 ms of the event loop each.
const MARK_SLICE = 250;

/** Marks these acknowledged events (in seq order) flushed; by seq range where the range holds exactly them, else by id. */
export async function markAcked(store: EventStore, acked: readonly EventRef[]): Promise<void> {
  for (let i = 0; i < acked.length; i += MARK_SLICE) {
    if (i > 0) await yieldToLoop();
    const chunk = acked.slice(i, i + MARK_SLICE);
    const first = chunk[0]!;
    const ascending = chunk.every((e, j) => j === 0 || (e.seq > chunk[j - 1]!.seq && e.mode === first.mode));
    if (ascending && store.markFlushedRange(first.mode, first.seq - 1, chunk.at(-1)!.seq, chunk.length)) continue;
    store.markFlushed(chunk.map((e) => e.id));
  }
}

export interface Verdicts {
  /** Events the remote stored (now or before), in the order sent. */
  acked: EventRef[];
  rejected: QuarantineInput[];
  duplicates: number;
  /** Events the remote gave no verdict for: they stay queued. */
  missing: number;
}

/** Sorts the remote's answer by event; verdicts for events not sent are ignored. */
export function sortVerdicts(events: readonly EventRef[], result: SinkResult): Verdicts {
  const byKey = new Map(events.map((e) => [e.idempotency_key, e]));
  const status = new Map<string, EventResult>();
  for (const r of result.results as EventResult[])
    if (byKey.has(r.idempotency_key) && !status.has(r.idempotency_key)) status.set(r.idempotency_key, r);
  const acked: EventRef[] = [];
  const rejected: QuarantineInput[] = [];
  let duplicates = 0;
  for (const e of events) {
    const r = status.get(e.idempotency_key);
    if (!r) continue;
    if (r.status === "rejected") {
      const first = r.errors?.[0];
      // Never counted as delivered: Supabase holds another event under this key.
      const reason =
        r.code === "idempotency_conflict"
          ? `idempotency_conflict: in Supabase, ${first?.message ?? `idempotency_key ${JSON.stringify(e.idempotency_key)} is stored for a different event`}`
          : `rejected by remote${first ? `: ${first.path} ${first.message}` : ""}`;
      rejected.push({ event: e, reason, errors: r.errors ?? [] });
    } else {
      acked.push(e);
      if (r.status === "duplicate") duplicates++;
    }
  }
  return { acked, rejected, duplicates, missing: events.length - acked.length - rejected.length };
}
