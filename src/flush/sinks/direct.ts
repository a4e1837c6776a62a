// Ships batches straight to PostgREST with supabase-js, as the seed does:
// upsert(rows, {onConflict: "idempotency_key", ignoreDuplicates: true}), then
// the zoe_health and zoe_state rows. supabase-js answers errors as plain
// objects and never retries a POST; this module turns them into SinkErrors so
// the flusher's p-retry loop can decide.
import { createClient, type SupabaseClient } from "@supabase/supabase-js";
import type { Clock } from "../../lib/clock.ts";
import {
  type ComparableEvent,
  conflictMessage,
  idempotencyDifferences,
} from "../../../supabase/functions/_shared/idempotency.ts";
import type { StoredEvent } from "../../../supabase/functions/_shared/event-schema.ts";
import {
  type EventResult,
  isRetryableStatus,
  redactCredentials,
  RemoteAuthError,
  RemoteRejectedError,
  RemoteTimeoutError,
  RemoteUnavailableError,
  RemoteUnreachableError,
  type Sink,
  type SinkBatch,
  type SinkResult,
  type WriterIdentity,
  type WritersReport,
} from "../sink.ts";

export interface DirectSinkOptions {
  url: string;
  serviceKey: string;
  timeoutMs: number;
  clock: Clock;
  fetch?: typeof fetch;
  /**
   * Ask PostgREST for the inserted keys (return=representation), so
   * duplicates are told apart from new rows. Costs a response body.
   */
  distinguishDuplicates?: boolean;
  /** Recorded on each event (store_id) and as the mode's writer in zoe_health. */
  writer?: WriterIdentity | null;
}

interface PostgrestFailure {
  error: { message?: string; code?: string; details?: unknown; hint?: string } | null;
  status: number;
}

// SQLSTATE classes that point at one row's data (22 data exception, 23
// integrity violation): splitting the batch isolates it. Anything else
// (42 privileges/undefined table, PGRST2xx schema cache) is systemic.
const ROW_LEVEL_SQLSTATE = /^(22|23)[0-9A-Z]{3}$/;

function toSinkError(
  where: string,
  result: PostgrestFailure,
  signal: AbortSignal,
  timeout: AbortSignal,
  timeoutMs: number,
  credentials: string[],
): unknown {
  const { status } = result;
  const error = redactCredentials(result.error, credentials);
  const code = error?.code ?? "";
  const what = `${where}: ${status} ${code} ${error?.message ?? ""}`.replace(/\s+/g, " ").trim();
  const options = {
    remoteStatus: status,
    details: { code, details: error?.details ?? null, hint: error?.hint ?? null },
  };
  if (status === 0) {
    if (signal.aborted) return signal.reason;
    if (timeout.aborted) return new RemoteTimeoutError(`${where}: no response within ${timeoutMs} ms`, options);
    return new RemoteUnreachableError(what, options);
  }
  if (isRetryableStatus(status)) return new RemoteUnavailableError(what, options);
  if (status === 401 || status === 403) return new RemoteAuthError(what, options);
  return new RemoteRejectedError(what, status === 413 || ROW_LEVEL_SQLSTATE.test(code), options);
}

function toRow(e: StoredEvent, storeId: string | null) {
  return {
    store_id: storeId,
    id: e.id,
    mode: e.mode,
    ts: e.ts,
    seq: e.seq,
    source: e.source,
    type: e.type,
    subtype: e.subtype,
    symbol: e.symbol,
    severity: e.severity,
    body: e.body,
    meta: e.meta,
    idempotency_key: e.idempotency_key,
  };
}

type StoredRow = ComparableEvent & { idempotency_key: string; id: string; seq: number | string };

// Only plain keys travel in PostgREST's in.(…) list: supabase-js quotes a
// comma or parenthesis but escapes no quote or backslash, and unquoted items
// may be trimmed. Any other key is read on its own with eq., which is literal.
const PLAIN_KEY = /^[\w.:@/+=#-]+$/;
const READ_CHUNK = 20;

/**
 * The stored rows of events the upsert did not insert, to tell a duplicate
 * (the same event) from an idempotency conflict. Rare (a replay after a lost
 * answer), so a few small reads. A failed read leaves those events without a
 * verdict, never with a wrong one.
 */
async function storedRows(
  client: SupabaseClient,
  events: StoredEvent[],
  batch: SinkBatch,
  options: DirectSinkOptions,
  warnings: string[],
): Promise<Map<string, StoredRow>> {
  const rows = new Map<string, StoredRow>();
  const keys = events.map((e) => e.idempotency_key);
  const plain = keys.filter((k) => PLAIN_KEY.test(k));
  const groups = [
    ...Array.from({ length: Math.ceil(plain.length / READ_CHUNK) }, (_, i) =>
      plain.slice(i * READ_CHUNK, (i + 1) * READ_CHUNK),
    ),
    ...keys.filter((k) => !PLAIN_KEY.test(k)).map((k) => [k]),
  ];
  for (const group of groups) {
    const timeout = AbortSignal.timeout(options.timeoutMs);
    const signal = AbortSignal.any([batch.signal, timeout]);
    const query = client
      .from("zoe_events")
      .select("idempotency_key,id,mode,seq,source,type,subtype,symbol,severity,body,meta");
    const result = await (group.length === 1
      ? query.eq("idempotency_key", group[0]!)
      : query.in("idempotency_key", group)
    ).abortSignal(signal);
    if (result.error) {
      const error = toSinkError(
        `read back zoe_events (${batch.mode}, ${group.length} keys)`,
        result,
        batch.signal,
        timeout,
        options.timeoutMs,
        [options.serviceKey],
      );
      if (batch.signal.aborted) throw error;
      warnings.push((error as Error).message);
      continue;
    }
    for (const r of (result.data ?? []) as StoredRow[]) rows.set(r.idempotency_key, r);
  }
  return rows;
}

const iso = (v: unknown) => (typeof v === "string" ? new Date(v).toISOString() : null);

function writersReport(row: Record<string, unknown>): WritersReport {
  const second = typeof row.second_writer === "string" ? JSON.parse(row.second_writer) : row.second_writer;
  return {
    writer:
      typeof row.writer_store_id === "string"
        ? { store_id: row.writer_store_id, started_at: iso(row.writer_started_at) ?? "" }
        : null,
    second_writer_at: iso(row.second_writer_at),
    second_writer: (second as WritersReport["second_writer"]) ?? null,
  };
}

export function createDirectSink(options: DirectSinkOptions): Sink {
  const client: SupabaseClient = createClient(options.url, options.serviceKey, {
    auth: { persistSession: false, autoRefreshToken: false, detectSessionInUrl: false },
    global: options.fetch ? { fetch: options.fetch } : {},
  });
  const base = options.url.replace(/\/+$/, "");
  const lastSeq = new Map<string, number>();
  const storeId = options.writer?.store_id ?? null;

  return {
    name: "direct",
    async send(batch: SinkBatch): Promise<SinkResult> {
      const warnings: string[] = [];
      const results: EventResult[] = [];
      // A duplicate key inside one upsert fails the whole statement (21000).
      const unique = [...new Map(batch.events.map((e) => [e.idempotency_key, e])).values()];
      if (unique.length > 0) {
        const timeout = AbortSignal.timeout(options.timeoutMs);
        const signal = AbortSignal.any([batch.signal, timeout]);
        const where = `upsert ${base}/rest/v1/zoe_events (${batch.mode}, ${unique.length} rows)`;
        const query = client
          .from("zoe_events")
          .upsert(
            unique.map((e) => toRow(e, storeId)),
            { onConflict: "idempotency_key", ignoreDuplicates: true },
          )
          .abortSignal(signal);
        const result = options.distinguishDuplicates ? await query.select("idempotency_key") : await query;
        if (result.error)
          throw toSinkError(where, result, batch.signal, timeout, options.timeoutMs, [options.serviceKey]);
        const inserted = options.distinguishDuplicates
          ? new Set(((result.data ?? []) as { idempotency_key: string }[]).map((r) => r.idempotency_key))
          : null;
        const repeats =
          inserted === null
            ? null
            : await storedRows(
                client,
                unique.filter((e) => !inserted.has(e.idempotency_key)),
                batch,
                options,
                warnings,
              );
        for (const e of batch.events) {
          if (inserted === null || inserted.has(e.idempotency_key)) {
            results.push({ idempotency_key: e.idempotency_key, seq: e.seq, status: "accepted" });
            continue;
          }
          const row = repeats?.get(e.idempotency_key);
          if (!row) continue; // not read back: no verdict, the event stays queued and is sent again
          const fields = idempotencyDifferences(row, e);
          if (fields.length === 0) {
            results.push({ idempotency_key: e.idempotency_key, seq: e.seq, status: "duplicate" });
            continue;
          }
          const stored = { id: row.id, mode: row.mode as string, seq: Number(row.seq) };
          const message = conflictMessage(e.idempotency_key, stored, fields);
          results.push({
            idempotency_key: e.idempotency_key,
            seq: e.seq,
            status: "rejected",
            code: "idempotency_conflict",
            stored_event: stored,
            errors: [{ path: "/idempotency_key", message }],
          });
        }
      }
      // The events are committed; a failed health/state row must not send them again.
      const side = async (table: "zoe_health" | "zoe_state", row: Record<string, unknown>, returning?: string) => {
        const timeout = AbortSignal.timeout(options.timeoutMs);
        const signal = AbortSignal.any([batch.signal, timeout]);
        const query = client.from(table).upsert(row, { onConflict: "mode" }).abortSignal(signal);
        const result = returning ? await query.select(returning) : await query;
        if (!result.error) return (result.data as unknown as Record<string, unknown>[] | null)?.[0] ?? null;
        const error = toSinkError(`upsert ${table} (${batch.mode})`, result, batch.signal, timeout, options.timeoutMs, [
          options.serviceKey,
        ]);
        if (batch.signal.aborted) throw error;
        warnings.push((error as Error).message);
        return null;
      };
      let writers: WritersReport | undefined;
      const now = new Date(options.clock.now()).toISOString();
      if (unique.length > 0) {
        const seq = Math.max(lastSeq.get(batch.mode) ?? 0, ...unique.map((e) => e.seq));
        lastSeq.set(batch.mode, seq);
        // The zoe_health_writer trigger keeps the writer history and records a second writer.
        const health = await side(
          "zoe_health",
          {
            mode: batch.mode,
            last_flush_ts: now,
            last_seq: seq,
            last_batch_count: unique.length,
            backlog: batch.backlog,
            updated_at: now,
            ...(options.writer
              ? { writer_store_id: options.writer.store_id, writer_started_at: options.writer.started_at }
              : {}),
          },
          options.writer ? "writer_store_id,writer_started_at,second_writer_at,second_writer" : undefined,
        );
        if (health) writers = writersReport(health);
      }
      if (batch.state)
        await side("zoe_state", { mode: batch.mode, ts: batch.state.ts, state: batch.state.state, updated_at: now });
      return { results, ...(warnings.length > 0 ? { warnings } : {}), ...(writers ? { writers } : {}) };
    },
  };
}
