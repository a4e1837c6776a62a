// Writes a verified batch to Postgres over SUPABASE_DB_URL with postgres.js.
//
// SQL rather than supabase-js: the events, the zoe_health row and the zoe_state
// snapshot must commit together or not at all (a 503 then means "nothing
// written, retry"), and PostgREST runs each request in its own transaction.
// SQL also gives `INSERT … ON CONFLICT DO NOTHING RETURNING`, which tells
// accepted from duplicate per event in one round trip.
import postgres from "postgres";
import type { StoredEvent } from "../_shared/event-schema.ts";
import { type BatchWrite, type BatchWriteResult, DatabaseError, type WriteBatch } from "./ingest.ts";

export interface WriterOptions {
  /** Fail fast instead of queueing behind a lock (e.g. a migration). */
  lockTimeoutMs?: number;
  statementTimeoutMs?: number;
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

function rows(events: StoredEvent[]) {
  return JSON.stringify(
    events.map((e) => ({
      id: e.id, mode: e.mode, ts: e.ts, seq: e.seq, source: e.source, type: e.type, subtype: e.subtype,
      symbol: e.symbol, severity: e.severity, body: e.body, meta: e.meta, idempotency_key: e.idempotency_key,
    })),
  );
}

// ON CONFLICT without a target also absorbs a clash on the primary key; such a
// row (same id, other idempotency_key) is reported as refused below instead of
// failing the batch forever.
async function insertEvents(sql: Sql, events: StoredEvent[]): Promise<string[]> {
  const inserted = await sql<{ idempotency_key: string }[]>`
    insert into public.zoe_events (id, mode, ts, seq, source, type, subtype, symbol, severity, body, meta, idempotency_key)
    select id, mode, ts, seq, source, type, subtype, symbol, severity, body, meta, idempotency_key
    from jsonb_to_recordset(${rows(events)}::text::jsonb) as r(
      id uuid, mode text, ts timestamptz, seq bigint, source text, type text, subtype text,
      symbol text, severity text, body text, meta jsonb, idempotency_key text)
    on conflict do nothing
    returning idempotency_key`;
  return inserted.map((r) => r.idempotency_key);
}

async function writeInTransaction(sql: Sql, batch: BatchWrite, perRow: boolean): Promise<BatchWriteResult> {
  const inserted = new Set<string>();
  const refused = new Map<number, string>();
  if (!perRow) {
    for (const key of await insertEvents(sql, batch.events)) inserted.add(key);
  } else {
    for (const [i, event] of batch.events.entries()) {
      try {
        const keys = await (sql as postgres.TransactionSql).savepoint((sp) => insertEvents(sp, [event]));
        for (const key of keys) inserted.add(key);
      } catch (error) {
        if (!isDataError(error)) throw error;
        refused.set(i, `Postgres refused the event: ${(error as Error).message} (SQLSTATE ${sqlstate(error)})`);
      }
    }
  }
  const missing = [...new Set(batch.events.map((e, i) => (refused.has(i) || inserted.has(e.idempotency_key) ? null : e.idempotency_key)))].filter(
    (k): k is string => k !== null,
  );
  if (missing.length) {
    const existing = new Set(
      (await sql<{ idempotency_key: string }[]>`select idempotency_key from public.zoe_events where idempotency_key = any(${missing})`).map((r) => r.idempotency_key),
    );
    batch.events.forEach((e, i) => {
      if (!refused.has(i) && !inserted.has(e.idempotency_key) && !existing.has(e.idempotency_key)) {
        refused.set(i, `id ${e.id} is already stored under a different idempotency_key`);
      }
    });
  }
  const stored = batch.events.filter((_, i) => !refused.has(i)).map((e) => e.seq);
  const lastSeq = stored.length ? Math.max(...stored) : null;
  await sql`
    insert into public.zoe_health as h (mode, last_flush_ts, last_seq, last_batch_count, backlog, updated_at)
    values (${batch.mode}, now(), ${lastSeq}, ${batch.batchCount}, ${batch.backlog ?? 0}, now())
    on conflict (mode) do update set
      last_flush_ts = excluded.last_flush_ts,
      last_seq = greatest(h.last_seq, excluded.last_seq),
      last_batch_count = excluded.last_batch_count,
      backlog = ${batch.backlog === null ? sql`h.backlog` : sql`excluded.backlog`},
      updated_at = excluded.updated_at`;
  if (batch.state) {
    // A retried or reordered batch must not roll the snapshot back.
    await sql`
      insert into public.zoe_state as s (mode, ts, state, updated_at)
      values (${batch.mode}, ${batch.state.ts}::timestamptz, ${JSON.stringify(batch.state.state)}::text::jsonb, now())
      on conflict (mode) do update set ts = excluded.ts, state = excluded.state, updated_at = excluded.updated_at
      where s.ts <= excluded.ts`;
  }
  return { inserted, refused };
}

export function createPgWriter(dbUrl: string, options: WriterOptions = {}): PgWriter {
  const sql = postgres(dbUrl, {
    max: options.maxConnections ?? 4,
    // Supabase's transaction pooler cannot use prepared statements.
    prepare: false,
    connect_timeout: 10,
    idle_timeout: 30,
    onnotice: () => {},
    connection: { application_name: "zoe-ingest" },
  });
  const lockTimeout = `${options.lockTimeoutMs ?? 5000}ms`;
  const statementTimeout = `${options.statementTimeoutMs ?? 20_000}ms`;

  const attempt = (batch: BatchWrite, perRow: boolean) =>
    sql.begin(async (tx) => {
      await tx`select set_config('lock_timeout', ${lockTimeout}, true), set_config('statement_timeout', ${statementTimeout}, true)`;
      return await writeInTransaction(tx, batch, perRow);
    }) as Promise<BatchWriteResult>;

  async function write(batch: BatchWrite): Promise<BatchWriteResult> {
    try {
      try {
        return await attempt(batch, false);
      } catch (error) {
        if (!isDataError(error)) throw error;
        return await attempt(batch, true);
      }
    } catch (error) {
      throw new DatabaseError((error as Error)?.message ?? String(error), sqlstate(error), { cause: error });
    }
  }

  return { write, close: () => sql.end({ timeout: 5 }) };
}
