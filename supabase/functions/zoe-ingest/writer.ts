// Writes a verified batch to Postgres over SUPABASE_DB_URL with postgres.js.
//
// SQL rather than supabase-js: the events, the zoe_health row and the zoe_state
// snapshot must commit together or not at all (a 503 then means "nothing
// written, retry"), and PostgREST runs each request in its own transaction.
// SQL also gives `INSERT … ON CONFLICT DO NOTHING RETURNING`, which tells
// accepted from duplicate per event in one round trip.
import postgres from "postgres";
import type { StoredEvent } from "../_shared/event-schema.ts";
import { type ComparableEvent, idempotencyDifferences } from "../_shared/idempotency.ts";
import {
  type BatchWrite,
  type BatchWriteResult,
  DatabaseError,
  PredecessorNotCommittedError,
  type WriteBatch,
  type WritersReport,
} from "./ingest.ts";

export interface WriterOptions {
  /** Fail fast instead of queueing behind a lock (e.g. a migration). */
  lockTimeoutMs?: number;
  statementTimeoutMs?: number;
  /** How long a batch with after_key waits for its predecessor's commit. */
  orderWaitMs?: number;
  maxConnections?: number;
}

export interface PgWriter {
  write: WriteBatch;
  close(): Promise<void>;
}

type Sql = postgres.Sql | postgres.TransactionSql;

function sqlstate(error: unknown): string | undefined {
  const code = (error as { code?: unknown })?.code;
  return typeof code === "string" ? code : undefined;
}

// Class 22 (data exception): Postgres refuses a value the shared schema let
// through. Retrying cannot help, so the culprit is rejected, not the batch.
const isDataError = (error: unknown) => /^22/.test(sqlstate(error) ?? "");

// One Postgres array literal per column, for unnest(): Postgres parses these
// with less work than a JSON document of row objects (json_to_recordset spent
// a third of the INSERT in its JSON lexer), and each stays small.
const ELEMENT_NEEDS_ESCAPE = /["\\]/;
function quoted(value: string): string {
  return ELEMENT_NEEDS_ESCAPE.test(value) ? `"${value.replace(/[\\"]/g, (c) => `\\${c}`)}"` : `"${value}"`;
}
function column(events: StoredEvent[], pick: (e: StoredEvent) => string | null): string {
  let out = "{";
  for (let i = 0; i < events.length; i++) {
    const v = pick(events[i]!);
    out += (i ? "," : "") + (v === null ? "NULL" : quoted(v));
  }
  return `${out}}`;
}

// Plain (no ON CONFLICT) is the first try: a first delivery has no duplicates,
// and the arbiter probe of both unique indexes before every row cost a fifth of
// the INSERT. A duplicate fails it with 23505 and the batch goes again with
// ON CONFLICT DO NOTHING, which also absorbs a clash on the primary key; such
// a row (same id, other idempotency_key) is reported as refused below instead
// of failing the batch forever.
type InsertMode = "plain" | "on-conflict";

async function insertEvents(
  sql: Sql,
  events: StoredEvent[],
  mode: InsertMode,
  storeId: string | null,
): Promise<string[]> {
  const values = sql`
    select *, ${storeId}::uuid from unnest(
      ${column(events, (e) => e.id)}::text::uuid[], ${column(events, (e) => e.mode)}::text::text[],
      ${column(events, (e) => e.ts)}::text::timestamptz[], ${column(events, (e) => String(e.seq))}::text::bigint[],
      ${column(events, (e) => e.source)}::text::text[], ${column(events, (e) => e.type)}::text::text[],
      ${column(events, (e) => e.subtype)}::text::text[], ${column(events, (e) => e.symbol)}::text::text[],
      ${column(events, (e) => e.severity)}::text::text[], ${column(events, (e) => e.body)}::text::text[],
      ${column(events, (e) => JSON.stringify(e.meta))}::text::jsonb[], ${column(events, (e) => e.idempotency_key)}::text::text[])`;
  const into = sql`insert into public.zoe_events (id, mode, ts, seq, source, type, subtype, symbol, severity, body, meta, idempotency_key, store_id)`;
  if (mode === "plain") {
    await sql`${into} ${values}`;
    return events.map((e) => e.idempotency_key);
  }
  const inserted = await sql<
    { idempotency_key: string }[]
  >`${into} ${values} on conflict do nothing returning idempotency_key`;
  return inserted.map((r) => r.idempotency_key);
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** The highest seq of the batch's events that are stored (not `skipped`): what zoe_health.last_seq becomes. */
function lastSeqOf(batch: BatchWrite, skipped: (index: number) => boolean): number | null {
  let last: number | null = null;
  batch.events.forEach((e, i) => {
    if (!skipped(i) && (last === null || e.seq > last)) last = e.seq;
  });
  return last;
}

// One advisory lock per batch, named by its last event's idempotency key: the
// batch holds it from its first statement to its commit, so a successor can
// sleep in Postgres until it ends instead of polling. A hash collision only
// costs a wait.
const lockKey = (sql: Sql, key: string) => sql`hashtextextended(${`zoe-ingest:${key}`}, 0)`;

/**
 * Holds this batch's transaction open until its predecessor batch has
 * committed (its last event is stored), so commits — and with them what
 * readers see — follow seq order. The key, not a seq: a store's seqs jump
 * forward at each start (a new range), an older range may still be flushing,
 * and another writer of the mode has a range of its own. It waits on the predecessor's lock,
 * taken and let go at once (holding it would block the very batch it waits
 * for), and polls only while the predecessor has not started.
 */
async function awaitPredecessor(
  sql: Sql,
  batch: BatchWrite & { afterKey: string },
  waitMs: number,
  lockTimeout: string,
): Promise<void> {
  const started = Date.now();
  const reached = async () =>
    (
      await sql<
        { ok: boolean }[]
      >`select exists (select 1 from public.zoe_events where idempotency_key = ${batch.afterKey}) as ok`
    )[0]?.ok === true;
  const key = lockKey(sql, batch.afterKey);
  try {
    for (let pause = 1; ; pause = Math.min(pause * 2, 16)) {
      if (await reached()) return;
      const left = waitMs - (Date.now() - started);
      if (left <= 0) throw new PredecessorNotCommittedError(batch.mode, batch.afterKey, Date.now() - started);
      const before = Date.now();
      await sql`select set_config('lock_timeout', ${`${left}ms`}, true), pg_advisory_lock_shared(${key})`;
      await sql`select pg_advisory_unlock_shared(${key}), set_config('lock_timeout', ${lockTimeout}, true)`;
      // Not running (not started yet, or gone): look again shortly.
      if (Date.now() - before < 1 && !(await reached()))
        await sleep(Math.min(pause, Math.max(0, waitMs - (Date.now() - started))));
    }
  } catch (error) {
    // The lock wait ran out: the same answer as a poll that ran out.
    if (sqlstate(error) === "55P03")
      throw new PredecessorNotCommittedError(batch.mode, batch.afterKey, Date.now() - started);
    throw error;
  }
}

interface Limits {
  orderWaitMs: number;
  lockTimeout: string;
}

/** plain → on-conflict after a duplicate → per-row (savepoints) after a data error. */
type WriteMode = InsertMode | "per-row";

async function writeInTransaction(
  sql: Sql,
  batch: BatchWrite,
  mode: WriteMode,
  limits: Limits,
): Promise<BatchWriteResult> {
  const inserted = new Set<string>();
  const refused = new Map<number, string>();
  const storeId = batch.writer?.store_id ?? null;
  if (mode !== "per-row") {
    if (batch.events.length > 0)
      for (const key of await insertEvents(sql, batch.events, mode, storeId)) inserted.add(key);
  } else {
    for (const [i, event] of batch.events.entries()) {
      try {
        const keys = await (sql as postgres.TransactionSql).savepoint((sp) =>
          insertEvents(sp, [event], "on-conflict", storeId),
        );
        for (const key of keys) inserted.add(key);
      } catch (error) {
        if (!isDataError(error)) throw error;
        refused.set(i, `Postgres refused the event: ${(error as Error).message} (SQLSTATE ${sqlstate(error)})`);
      }
    }
  }
  const conflicts = await judgeRepeats(sql, batch.events, inserted, refused);
  if (batch.afterKey !== null)
    await awaitPredecessor(sql, batch as BatchWrite & { afterKey: string }, limits.orderWaitMs, limits.lockTimeout);
  const lastSeq = lastSeqOf(batch, (i) => refused.has(i) || conflicts.has(i));
  // The zoe_health_writer trigger keeps the writer history and records a second writer.
  const health = sql<HealthRow[]>`
    insert into public.zoe_health as h (mode, last_flush_ts, last_seq, last_batch_count, backlog, updated_at, writer_store_id, writer_started_at)
    values (${batch.mode}, now(), ${lastSeq}, ${batch.batchCount}, ${batch.backlog ?? 0}, now(), ${storeId}::uuid, ${batch.writer?.started_at ?? null}::timestamptz)
    on conflict (mode) do update set
      last_flush_ts = excluded.last_flush_ts,
      last_seq = greatest(h.last_seq, excluded.last_seq),
      last_batch_count = excluded.last_batch_count,
      backlog = ${batch.backlog === null ? sql`h.backlog` : sql`excluded.backlog`},
      updated_at = excluded.updated_at,
      writer_store_id = excluded.writer_store_id,
      writer_started_at = excluded.writer_started_at
    returning writer_store_id::text, writer_started_at, second_writer_at, second_writer`.execute();
  if (batch.state) {
    // A retried or reordered batch must not roll the snapshot back.
    health.catch(() => {});
    await sql`
      insert into public.zoe_state as s (mode, ts, state, updated_at)
      values (${batch.mode}, ${batch.state.ts}::timestamptz, ${JSON.stringify(batch.state.state)}::text::jsonb, now())
      on conflict (mode) do update set ts = excluded.ts, state = excluded.state, updated_at = excluded.updated_at
      where s.ts <= excluded.ts`;
  }
  const [row] = await health;
  return { inserted, refused, conflicts, writers: writersReport(row) };
}

interface HealthRow {
  writer_store_id: string | null;
  writer_started_at: Date | string | null;
  second_writer_at: Date | string | null;
  second_writer: Record<string, unknown>[] | string | null;
}

const iso = (v: Date | string | null) =>
  v === null ? null : v instanceof Date ? v.toISOString() : new Date(v).toISOString();

function writersReport(row: HealthRow | undefined): WritersReport {
  if (!row) return { writer: null, second_writer_at: null, second_writer: null };
  const second = typeof row.second_writer === "string" ? JSON.parse(row.second_writer) : row.second_writer;
  return {
    writer:
      row.writer_store_id === null ? null : { store_id: row.writer_store_id, started_at: iso(row.writer_started_at)! },
    second_writer_at: iso(row.second_writer_at),
    second_writer: second ?? null,
  };
}

type StoredRow = ComparableEvent & { idempotency_key: string; id: string; seq: string | number };

/**
 * Every event this write did not insert (or that repeats a key inserted
 * earlier in the batch) is compared with the row holding its key: the same
 * event is a duplicate, a different one an idempotency conflict, no row at all
 * an id clash (refused). Only these keys are read back, so a batch of new
 * events costs no extra query.
 */
async function judgeRepeats(
  sql: Sql,
  events: StoredEvent[],
  inserted: Set<string>,
  refused: Map<number, string>,
): Promise<BatchWriteResult["conflicts"]> {
  const conflicts: BatchWriteResult["conflicts"] = new Map();
  const first = new Set<string>();
  const repeats: number[] = [];
  events.forEach((e, i) => {
    if (refused.has(i)) return;
    if (inserted.has(e.idempotency_key) && !first.has(e.idempotency_key)) first.add(e.idempotency_key);
    else repeats.push(i);
  });
  if (repeats.length === 0) return conflicts;
  const keys = [...new Set(repeats.map((i) => events[i]!.idempotency_key))];
  const rows = await sql<StoredRow[]>`
    select idempotency_key, id, mode, seq, source, type, subtype, symbol, severity, body, meta
    from public.zoe_events where idempotency_key = any(${keys})`;
  const byKey = new Map(rows.map((r) => [r.idempotency_key, r]));
  for (const i of repeats) {
    const e = events[i]!;
    const row = byKey.get(e.idempotency_key);
    if (!row) {
      refused.set(
        i,
        `not stored: an event with a different idempotency_key already holds its id ${e.id} or its ${e.mode} seq ${e.seq}`,
      );
      continue;
    }
    const fields = idempotencyDifferences(row, e);
    if (fields.length > 0)
      conflicts.set(i, { stored: { id: row.id, mode: row.mode as string, seq: Number(row.seq) }, fields });
  }
  return conflicts;
}

export function createPgWriter(dbUrl: string, options: WriterOptions = {}): PgWriter {
  const sql = postgres(dbUrl, {
    max: options.maxConnections ?? 10,
    // Supabase's transaction pooler cannot use prepared statements.
    prepare: false,
    connect_timeout: 10,
    idle_timeout: 30,
    onnotice: () => {},
    connection: { application_name: "zoe-ingest" },
  });
  const lockTimeout = `${options.lockTimeoutMs ?? 5000}ms`;
  const orderWaitMs = options.orderWaitMs ?? 3000;
  const statementTimeout = `${options.statementTimeoutMs ?? 20_000}ms`;

  const attempt = (batch: BatchWrite, mode: WriteMode) =>
    sql.begin(async (tx) => {
      // Sent ahead of the INSERT on the same connection (postgres.js
      // pipelines queued queries): one round trip less per batch.
      const settings =
        tx`select set_config('lock_timeout', ${lockTimeout}, true), set_config('statement_timeout', ${statementTimeout}, true)${
          batch.lastKey === null ? tx`` : tx`, pg_advisory_xact_lock(${lockKey(tx, batch.lastKey)})`
        }`.execute();
      settings.catch(() => {}); // its failure also fails the INSERT, which reports it
      const result = await writeInTransaction(tx, batch, mode, { orderWaitMs, lockTimeout });
      await settings;
      return result;
    }) as Promise<BatchWriteResult>;

  async function write(batch: BatchWrite): Promise<BatchWriteResult> {
    try {
      let mode: WriteMode = "plain";
      for (;;) {
        try {
          return await attempt(batch, mode);
        } catch (error) {
          if (mode === "plain" && sqlstate(error) === "23505") mode = "on-conflict";
          else if (mode !== "per-row" && isDataError(error)) mode = "per-row";
          else throw error;
        }
      }
    } catch (error) {
      if (error instanceof PredecessorNotCommittedError) throw error;
      throw new DatabaseError((error as Error)?.message ?? String(error), sqlstate(error), { cause: error });
    }
  }

  return { write, close: () => sql.end({ timeout: 5 }) };
}
