// The group-commit writer: seqs gapless per mode, assigned inside the
// transaction that inserts the event. Concurrent appends are group-committed:
// every request that arrives while the event loop is busy shares one
// transaction, and each caller's promise settles only after the commit that
// holds its events.
import type { Database } from "bun:sqlite";
import type { Clock } from "../lib/clock.ts";
import { ConflictError, IdempotencyConflictError, StoreUnavailableError } from "../domain/errors.ts";
import type { ZoeEvent } from "../domain/events.ts";
import { conflictMessage, idempotencyDifferences } from "../domain/idempotency.ts";
import type { EventInput, Mode } from "../domain/schema.ts";
import { COLUMNS, EVENT_OVERHEAD_BYTES, type EventRow, rowToEvent, storeFailure } from "./rows.ts";

export interface AppendResult {
  id: string;
  seq: number;
  idempotency_key: string;
  duplicate: boolean;
}

interface PendingAppend {
  events: EventInput[];
  resolve(results: AppendResult[]): void;
  reject(error: unknown): void;
}

type Statement = ReturnType<Database["query"]>;

/** Rows per multi-row INSERT (13 parameters each). */
const INSERT_CHUNK = 32;

export interface WriterOptions {
  clock: Clock;
  /** Commit concurrent appends together. */
  groupCommit: boolean;
  /** The highest stored seq of each mode, where the counters continue. */
  lastSeqs: ReadonlyMap<Mode, number>;
  /** Called inside each transaction, before COMMIT, with the new events (unsorted) and their backlog bytes. */
  beforeCommit(stored: ZoeEvent[], sizes: number[]): void;
  /** Called after each commit with the new events (unsorted), before any caller hears back. */
  onCommit(stored: ZoeEvent[]): void;
}

export class Writer {
  private readonly db: Database;
  private readonly clock: Clock;
  private readonly groupCommit: boolean;
  private readonly beforeCommit: WriterOptions["beforeCommit"];
  private readonly onCommit: WriterOptions["onCommit"];
  private readonly counters: Map<Mode, number>;
  private pending: PendingAppend[] = [];
  private scheduled = false;
  private readonly byKey: Statement;
  private readonly byId: Statement;
  // Transaction control as cached statements: db.run() would compile the SQL
  // again on every call, several times per request on the ingest path.
  private readonly tx: Record<"begin" | "commit" | "savepoint" | "release" | "rollbackTo", Statement>;
  /** Multi-row INSERT statements by row count, prepared on first use. */
  private readonly inserts = new Map<number, Statement>();

  constructor(db: Database, options: WriterOptions) {
    this.db = db;
    this.clock = options.clock;
    this.groupCommit = options.groupCommit;
    this.beforeCommit = options.beforeCommit;
    this.onCommit = options.onCommit;
    this.counters = new Map(options.lastSeqs);
    // The whole row, to compare a repeat with what is stored; it is read only
    // when the key exists, so the hot path (a new key) pays nothing for it.
    this.byKey = db.query(`SELECT ${COLUMNS} FROM local_events WHERE idempotency_key = ?`);
    this.byId = db.query("SELECT idempotency_key FROM local_events WHERE id = ?");
    this.tx = {
      begin: db.query("BEGIN IMMEDIATE"),
      commit: db.query("COMMIT"),
      savepoint: db.query("SAVEPOINT request"),
      release: db.query("RELEASE request"),
      rollbackTo: db.query("ROLLBACK TO request"),
    };
  }

  /** Highest seq assigned so far in `mode` (0 when none). */
  lastSeq(mode: Mode): number {
    return this.counters.get(mode) ?? 0;
  }

  /** Stores the events of one request atomically; resolves after the commit that holds them. */
  append(events: EventInput[]): Promise<AppendResult[]> {
    if (!this.groupCommit) {
      try {
        const outcome = this.commit([{ events, resolve() {}, reject() {} }])[0]!;
        return outcome instanceof Error ? Promise.reject(outcome) : Promise.resolve(outcome);
      } catch (error) {
        return Promise.reject(error);
      }
    }
    return new Promise((resolve, reject) => {
      this.pending.push({ events, resolve, reject });
      if (!this.scheduled) {
        this.scheduled = true;
        // setImmediate, not a microtask: it runs after the poll phase, so every
        // request Bun read in this loop iteration joins the same commit.
        setImmediate(() => this.drain());
      }
    });
  }

  /** Commits what is waiting now (at close), instead of on the next loop turn. */
  flushPending(): void {
    if (this.pending.length > 0) this.drain();
  }

  private drain(): void {
    this.scheduled = false;
    if (this.pending.length === 0) return; // close() already drained it
    const batch = this.pending;
    this.pending = [];
    let outcomes: (AppendResult[] | Error)[];
    try {
      outcomes = this.commit(batch);
    } catch (error) {
      for (const p of batch) p.reject(error);
      return;
    }
    batch.forEach((p, i) => {
      const o = outcomes[i]!;
      if (o instanceof Error) p.reject(o);
      else p.resolve(o);
    });
  }

  /** One transaction for all `batch` requests; a failing request rolls back alone. */
  private commit(batch: PendingAppend[]): (AppendResult[] | Error)[] {
    const before = new Map(this.counters);
    const now = new Date(this.clock.now()).toISOString();
    const stored: ZoeEvent[] = [];
    const sizes: number[] = []; // backlog bytes of stored[i]
    const outcomes: (AppendResult[] | Error)[] = [];
    try {
      this.tx.begin.run();
    } catch (error) {
      throw storeFailure("Cannot store events", error);
    }
    try {
      for (const request of batch) {
        const requestBefore = new Map(this.counters);
        const storedBefore = stored.length;
        // A one-event request needs no savepoint: SQLite undoes a failing
        // statement by itself, and insertRequest writes nothing before its insert.
        const savepoint = request.events.length > 1;
        if (savepoint) this.tx.savepoint.run();
        try {
          outcomes.push(this.insertRequest(request.events, now, stored, sizes));
          if (savepoint) this.tx.release.run();
        } catch (error) {
          const failure = storeFailure("Cannot store events", error);
          // A disk failure dooms the whole transaction, not just this request;
          // SQLite may already have rolled it back (SQLITE_FULL does), so the
          // savepoint is gone and the outer handler must not mask the cause.
          if (failure instanceof StoreUnavailableError) throw failure;
          if (savepoint) {
            this.tx.rollbackTo.run();
            this.tx.release.run();
          }
          for (const [m, s] of requestBefore) this.counters.set(m, s);
          stored.length = storedBefore;
          sizes.length = storedBefore;
          outcomes.push(failure);
        }
      }
      if (stored.length > 0) this.beforeCommit(stored, sizes);
      this.tx.commit.run();
    } catch (error) {
      try {
        this.db.run("ROLLBACK");
      } catch {
        // SQLite may already have rolled back (e.g. on SQLITE_FULL).
      }
      for (const [m, s] of before) this.counters.set(m, s);
      throw storeFailure("Cannot store events", error);
    }
    this.onCommit(stored);
    return outcomes;
  }

  /**
   * Stores one request's events. An event whose idempotency_key is already
   * stored (or came earlier in this request) is a duplicate carrying the
   * stored id and seq when it is the same event, and refuses the whole request
   * (IdempotencyConflictError) when it differs (shared/idempotency.ts says
   * in what). The new rows go in with multi-row INSERTs after the checks,
   * which costs about a third less per row than a statement per row.
   */
  private insertRequest(events: EventInput[], now: string, stored: ZoeEvent[], sizes: number[]): AppendResult[] {
    const results: AppendResult[] = [];
    const fresh: ZoeEvent[] = [];
    // This request's new keys and ids, not in the database until insertRows.
    const pendingKeys = events.length > 1 ? new Map<string, ZoeEvent>() : null;
    const pendingIds = events.length > 1 ? new Set<string>() : null;
    events.forEach((input, index) => {
      const id = input.id ?? Bun.randomUUIDv7();
      const key = input.idempotency_key ?? id;
      // A key the store just generated (a fresh UUIDv7) cannot be stored yet:
      // skip the lookup. UNIQUE(idempotency_key) still guards the impossible.
      const generated = input.idempotency_key === undefined && input.id === undefined;
      const existing = generated ? null : (pendingKeys?.get(key) ?? this.storedByKey(key));
      if (existing) {
        assertSameEvent(existing, input, index, key);
        results.push({ id: existing.id, seq: existing.seq, idempotency_key: key, duplicate: true });
        return;
      }
      if (input.id !== undefined && (pendingIds?.has(id) || this.byId.get(id))) {
        throw new ConflictError(`Cannot store event ${index}: id ${id} is already used by an event with another idempotency_key`, {
          details: [{ path: `/${index}/id`, message: "Already used by another event" }],
        });
      }
      const seq = (this.counters.get(input.mode) ?? 0) + 1;
      this.counters.set(input.mode, seq);
      const event: ZoeEvent = {
        id,
        mode: input.mode,
        ts: input.ts ?? now,
        seq,
        source: input.source,
        type: input.type,
        subtype: input.subtype,
        symbol: input.symbol ?? null,
        severity: input.severity ?? "info",
        body: input.body,
        meta: input.meta ?? {},
        idempotency_key: key,
      };
      fresh.push(event);
      results.push({ id, seq, idempotency_key: key, duplicate: false });
      pendingKeys?.set(key, event);
      pendingIds?.add(id);
    });
    this.insertRows(fresh, now, sizes);
    for (const e of fresh) stored.push(e);
    return results;
  }

  private storedByKey(key: string): ZoeEvent | null {
    const row = this.byKey.get(key) as EventRow | null;
    return row ? rowToEvent(row) : null;
  }

  private insertRows(rows: ZoeEvent[], now: string, sizes: number[]): void {
    for (let i = 0; i < rows.length; ) {
      const n = Math.min(INSERT_CHUNK, rows.length - i);
      let statement = this.inserts.get(n);
      if (!statement) {
        const values = Array.from({ length: n }, () => "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)").join(", ");
        statement = this.db.query(`INSERT INTO local_events (${COLUMNS}, created_at) VALUES ${values}`);
        this.inserts.set(n, statement);
      }
      const params: (string | number | null)[] = [];
      for (let j = i; j < i + n; j++) {
        const e = rows[j]!;
        const meta = JSON.stringify(e.meta);
        sizes.push(Buffer.byteLength(e.body) + Buffer.byteLength(meta) + EVENT_OVERHEAD_BYTES);
        params.push(e.id, e.mode, e.ts, e.seq, e.source, e.type, e.subtype, e.symbol, e.severity, e.body, meta, e.idempotency_key, now);
      }
      statement.run(...params);
      i += n;
    }
  }
}

/** Refuses `input` (event `index` of its request) when it is not a repeat of `stored`, the event that holds its key. */
function assertSameEvent(stored: ZoeEvent, input: EventInput, index: number, key: string): void {
  const candidate = { ...input, symbol: input.symbol ?? null, severity: input.severity ?? "info", meta: input.meta ?? {} };
  const fields = idempotencyDifferences(stored, candidate);
  if (fields.length === 0) return;
  const ref = { id: stored.id, mode: stored.mode, seq: stored.seq };
  const message = conflictMessage(key, ref, fields);
  throw new IdempotencyConflictError(`Cannot store event ${index}: ${message}; reuse a key only to retry the same event`, {
    details: [{ path: `/${index}/idempotency_key`, message, stored_event: ref, fields }],
  });
}
