// The durable local event store: SQLite in WAL mode, seqs gapless per mode,
// assigned inside the transaction that inserts the event. Concurrent appends
// are group-committed: every request that arrives while the event loop is busy
// shares one transaction, and each caller's promise settles only after the
// commit that holds its events.
import { Database } from "bun:sqlite";
import { mkdirSync } from "node:fs";
import { dirname } from "node:path";
import { type Checkpointer, startCheckpointer } from "./checkpointer.ts";
import { type Clock, systemClock } from "../lib/clock.ts";
import type { SynchronousLevel } from "../config.ts";
import { ConflictError, StartupError, StoreUnavailableError, ZoeError } from "../domain/errors.ts";
import { migrate } from "./migrate.ts";
import type { ZoeEvent } from "../domain/events.ts";
import { type EventInput, MODES, type Mode, type StoredEvent } from "../domain/schema.ts";


export interface AppendResult {
  id: string;
  seq: number;
  idempotency_key: string;
  duplicate: boolean;
}

export interface StoreOptions {
  path: string;
  synchronous?: SynchronousLevel;
  busyTimeoutMs?: number;
  /** Flushed events older than this are pruned; unflushed ones never are. */
  retentionMs?: number;
  /** Newest state snapshots kept per mode. */
  stateKeep?: number;
  /** Commit concurrent appends together (default true). */
  groupCommit?: boolean;
  clock?: Clock;
  /** Checkpoint the WAL from a worker thread every this many ms (0 or unset: only SQLite's automatic checkpoint). */
  checkpointIntervalMs?: number;
  /** Reports an error thrown by an onAppend listener (default: console.error). */
  onListenerError?: (error: unknown) => void;
}

export interface FlushLogEntry {
  mode: Mode;
  count: number;
  last_seq: number;
  status: "ok" | "partial" | "error";
  error?: string | null;
}

export interface StateSnapshot {
  ts: string;
  state: Record<string, unknown>;
}

type AppendListener = (events: ZoeEvent[]) => void;

interface EventRow {
  id: string;
  mode: Mode;
  ts: string;
  seq: number;
  source: string;
  type: string;
  subtype: string;
  symbol: string | null;
  severity: ZoeEvent["severity"];
  body: string;
  meta_json: string;
  idempotency_key: string;
}

interface PendingAppend {
  events: EventInput[];
  resolve(results: AppendResult[]): void;
  reject(error: unknown): void;
}

const COLUMNS = "id, mode, ts, seq, source, type, subtype, symbol, severity, body, meta_json, idempotency_key";

/** Unflushed events and their approximate size: what the backlog caps (src/store/limits.ts) bound. */
export interface BacklogUsage {
  events: number;
  bytes: number;
}

/**
 * The size an event is counted with in the backlog: body and meta in UTF-8
 * plus a fixed share for the other columns and the indexes. EVENT_BYTES_SQL is
 * the same sum over a stored row, so what append adds markFlushed subtracts.
 */
export const EVENT_OVERHEAD_BYTES = 200;
export const EVENT_BYTES_SQL = `length(CAST(body AS BLOB)) + length(CAST(meta_json AS BLOB)) + ${EVENT_OVERHEAD_BYTES}`;

/** Rows per multi-row INSERT (13 parameters each). */
const INSERT_CHUNK = 32;

export function rowToEvent(row: EventRow): ZoeEvent {
  return {
    id: row.id,
    mode: row.mode,
    ts: row.ts,
    seq: row.seq,
    source: row.source,
    type: row.type,
    subtype: row.subtype,
    symbol: row.symbol,
    severity: row.severity,
    body: row.body,
    meta: JSON.parse(row.meta_json) as Record<string, unknown>,
    idempotency_key: row.idempotency_key,
  };
}

const UNAVAILABLE = /^SQLITE_(FULL|READONLY|IOERR|CANTOPEN|BUSY|LOCKED|NOMEM|CORRUPT|NOTADB|PROTOCOL)/;

/** Maps a disk/database failure to a 503; anything else is rethrown as is. */
export function storeFailure(action: string, error: unknown): Error {
  if (error instanceof ZoeError) return error;
  const code = String((error as { code?: unknown })?.code ?? "");
  if (UNAVAILABLE.test(code)) {
    const reason = code.startsWith("SQLITE_FULL") ? "disk or database is full" : code.startsWith("SQLITE_READONLY") ? "database is read-only" : code;
    return new StoreUnavailableError(`${action}: ${reason}`, { cause: error });
  }
  return error instanceof Error ? error : new Error(String(error));
}

/**
 * Holds an exclusive SQLite lock on `<db>.lock` for the life of the process.
 * The OS drops it when the process dies, so a crash never leaves a stale lock.
 */
function acquireInstanceLock(path: string): Database {
  const lockPath = `${path}.lock`;
  const lock = new Database(lockPath, { create: true });
  try {
    lock.run("PRAGMA busy_timeout = 0");
    lock.run("PRAGMA locking_mode = EXCLUSIVE");
    lock.run("BEGIN EXCLUSIVE");
  } catch (cause) {
    lock.close();
    throw new StartupError(
      "db_locked",
      `Cannot open ${path}: another zoe-local process is using it (lock ${lockPath} is held). ` +
        "Two writers would assign conflicting seqs; stop the other instance or set ZOE_DB_PATH to another file.",
      { cause },
    );
  }
  return lock;
}

export function openStore(options: StoreOptions): EventStore {
  if (options.path !== ":memory:") mkdirSync(dirname(options.path), { recursive: true });
  const lock = options.path === ":memory:" ? null : acquireInstanceLock(options.path);
  let db: Database;
  try {
    db = new Database(options.path, { create: true, strict: true });
    db.run(`PRAGMA busy_timeout = ${options.busyTimeoutMs ?? 5000}`);
    db.run("PRAGMA journal_mode = WAL");
    db.run(`PRAGMA synchronous = ${options.synchronous ?? "NORMAL"}`);
    db.run("PRAGMA wal_autocheckpoint = 1000");
    // 8 MB: appends touch only the right edge of each B-tree, and the bench
    // showed no gain from 32 MB, only ~20 MB more resident memory.
    db.run("PRAGMA cache_size = -8000");
    db.run("PRAGMA temp_store = MEMORY");
    db.run("PRAGMA foreign_keys = ON");
    migrate(db);
  } catch (cause) {
    lock?.close();
    if (cause instanceof StartupError) throw cause;
    throw new StartupError("db_open_failed", `Cannot open database ${options.path}: ${(cause as Error).message}`, { cause });
  }
  return new EventStore(db, lock, options);
}

export class EventStore {
  readonly path: string;
  readonly db: Database;
  private readonly lock: Database | null;
  private readonly clock: Clock;
  private readonly groupCommit: boolean;
  private readonly retentionMs: number;
  private readonly stateKeep: number;
  private readonly onListenerError: (error: unknown) => void;
  private readonly counters = new Map<Mode, number>();
  private readonly listeners = new Set<AppendListener>();
  // Kept in memory so the ingest path checks the caps without a COUNT(*).
  private readonly usage = new Map<Mode, BacklogUsage>();
  private pending: PendingAppend[] = [];
  private scheduled = false;
  private closed = false;

  private readonly q: {
    byKey: ReturnType<Database["query"]>;
    byId: ReturnType<Database["query"]>;
    maxSeq: ReturnType<Database["query"]>;
    since: ReturnType<Database["query"]>;
    latest: ReturnType<Database["query"]>;
    unflushed: ReturnType<Database["query"]>;
    markFlushed: ReturnType<Database["query"]>;
    backlog: ReturnType<Database["query"]>;
    oldestUnflushed: ReturnType<Database["query"]>;
    logFlush: ReturnType<Database["query"]>;
    lastFlush: ReturnType<Database["query"]>;
    putState: ReturnType<Database["query"]>;
    trimState: ReturnType<Database["query"]>;
    latestState: ReturnType<Database["query"]>;
  };
  // Transaction control as cached statements: db.run() would compile the SQL
  // again on every call, several times per request on the ingest path.
  private readonly tx: Record<"begin" | "commit" | "savepoint" | "release" | "rollbackTo", ReturnType<Database["query"]>>;
  /** Multi-row INSERT statements by row count, prepared on first use. */
  private readonly inserts = new Map<number, ReturnType<Database["query"]>>();
  private readonly checkpointer: Checkpointer | null;

  constructor(db: Database, lock: Database | null, options: StoreOptions) {
    this.db = db;
    this.lock = lock;
    this.path = options.path;
    this.clock = options.clock ?? systemClock;
    this.groupCommit = options.groupCommit ?? true;
    this.retentionMs = options.retentionMs ?? 7 * 86_400_000;
    this.stateKeep = options.stateKeep ?? 100;
    this.onListenerError = options.onListenerError ?? ((error) => console.error("zoe-local: append listener failed:", error));
    this.q = {
      byKey: db.query("SELECT id, seq, idempotency_key FROM local_events WHERE idempotency_key = ?"),
      byId: db.query("SELECT idempotency_key FROM local_events WHERE id = ?"),
      maxSeq: db.query("SELECT COALESCE(MAX(seq), 0) AS seq FROM local_events WHERE mode = ?"),
      since: db.query(`SELECT ${COLUMNS} FROM local_events WHERE mode = ? AND seq > ? ORDER BY seq LIMIT ?`),
      latest: db.query(
        `SELECT * FROM (SELECT ${COLUMNS} FROM local_events WHERE mode = ? ORDER BY seq DESC LIMIT ?) ORDER BY seq`,
      ),
      // The seqs to skip go in as a JSON array: the flusher's acknowledged
      // events whose marks are still to be written.
      unflushed: db.query(
        `SELECT ${COLUMNS} FROM local_events WHERE mode = ? AND flushed = 0 AND seq > ? AND seq NOT IN (SELECT value FROM json_each(?)) ORDER BY seq LIMIT ?`,
      ),
      // One statement for the whole batch (ids as a JSON array): about 40% less
      // time holding the event loop than an UPDATE per id.
      markFlushed: db.query(
        `UPDATE local_events SET flushed = 1, flushed_at = ? WHERE id IN (SELECT value FROM json_each(?)) AND flushed = 0 RETURNING mode, ${EVENT_BYTES_SQL} AS bytes`,
      ),
      backlog: db.query("SELECT COUNT(*) AS n FROM local_events WHERE mode = ? AND flushed = 0"),
      oldestUnflushed: db.query("SELECT created_at FROM local_events WHERE mode = ? AND flushed = 0 ORDER BY seq LIMIT 1"),
      logFlush: db.query("INSERT INTO local_flush_log (ts, mode, count, last_seq, status, error) VALUES (?, ?, ?, ?, ?, ?)"),
      lastFlush: db.query("SELECT ts, count, last_seq, status, error FROM local_flush_log WHERE mode = ? ORDER BY id DESC LIMIT 1"),
      putState: db.query("INSERT INTO local_state_snapshots (mode, ts, state_json) VALUES (?, ?, ?)"),
      trimState: db.query(
        "DELETE FROM local_state_snapshots WHERE mode = ? AND id <= (SELECT id FROM local_state_snapshots WHERE mode = ? ORDER BY id DESC LIMIT 1 OFFSET ?)",
      ),
      latestState: db.query("SELECT ts, state_json FROM local_state_snapshots WHERE mode = ? ORDER BY id DESC LIMIT 1"),
    };
    this.tx = {
      begin: db.query("BEGIN IMMEDIATE"),
      commit: db.query("COMMIT"),
      savepoint: db.query("SAVEPOINT request"),
      release: db.query("RELEASE request"),
      rollbackTo: db.query("ROLLBACK TO request"),
    };
    for (const mode of MODES) this.counters.set(mode, (this.q.maxSeq.get(mode) as { seq: number }).seq);
    this.recountBacklog();
    this.checkpointer =
      options.checkpointIntervalMs && options.path !== ":memory:"
        ? startCheckpointer({ path: options.path, intervalMs: options.checkpointIntervalMs })
        : null;
  }

  /** Recomputes the backlog usage from the table (at open; one pass over the unflushed rows). */
  recountBacklog(): void {
    for (const mode of MODES) this.usage.set(mode, { events: 0, bytes: 0 });
    const rows = this.db
      .query(`SELECT mode, COUNT(*) AS events, COALESCE(SUM(${EVENT_BYTES_SQL}), 0) AS bytes FROM local_events WHERE flushed = 0 GROUP BY mode`)
      .all() as ({ mode: Mode } & BacklogUsage)[];
    for (const r of rows) this.usage.set(r.mode, { events: r.events, bytes: r.bytes });
  }

  /** Unflushed events (and their bytes) of `mode`, or of all modes; kept in memory, no query. */
  backlogUsage(mode?: Mode): BacklogUsage {
    if (mode) return { ...(this.usage.get(mode) ?? { events: 0, bytes: 0 }) };
    let events = 0;
    let bytes = 0;
    for (const u of this.usage.values()) {
      events += u.events;
      bytes += u.bytes;
    }
    return { events, bytes };
  }

  /** For code that moves events in or out of the queue itself (the quarantine): keeps backlogUsage exact. */
  adjustBacklog(mode: Mode, events: number, bytes: number): void {
    const u = this.usage.get(mode);
    if (!u) return;
    u.events = Math.max(0, u.events + events);
    u.bytes = Math.max(0, u.bytes + bytes);
  }

  /** Highest seq assigned so far in `mode` (0 when none). */
  lastSeq(mode: Mode): number {
    return this.counters.get(mode) ?? 0;
  }

  /** Called after every commit with the newly stored events, in seq order. */
  onAppend(listener: AppendListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /**
   * Stores the events of one request atomically. Resolves after the commit
   * that holds them; events whose idempotency_key is already stored come back
   * with the stored id and seq and `duplicate: true`.
   */
  append(events: EventInput[]): Promise<AppendResult[]> {
    if (this.closed) return Promise.reject(new StoreUnavailableError("Cannot store events: the store is closed"));
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
    const db = this.db;
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
      this.tx.commit.run();
    } catch (error) {
      try {
        db.run("ROLLBACK");
      } catch {
        // SQLite may already have rolled back (e.g. on SQLITE_FULL).
      }
      for (const [m, s] of before) this.counters.set(m, s);
      throw storeFailure("Cannot store events", error);
    }
    for (let i = 0; i < stored.length; i++) {
      const u = this.usage.get(stored[i]!.mode)!;
      u.events++;
      u.bytes += sizes[i]!;
    }
    if (stored.length > 0) {
      stored.sort((a, b) => (a.mode === b.mode ? a.seq - b.seq : a.mode < b.mode ? -1 : 1));
      // The events are durable now: a failing listener must not turn their
      // acknowledgement into an error, nor starve the other listeners.
      for (const listener of this.listeners) {
        try {
          listener(stored);
        } catch (error) {
          this.onListenerError(error);
        }
      }
    }
    return outcomes;
  }

  /**
   * Stores one request's events. An event whose idempotency_key is already
   * stored (or came earlier in this request) is a duplicate carrying the
   * stored id and seq. The new rows go in with multi-row INSERTs after the
   * checks, which costs about a third less per row than a statement per row.
   */
  private insertRequest(events: EventInput[], now: string, stored: ZoeEvent[], sizes: number[]): AppendResult[] {
    const results: AppendResult[] = [];
    const fresh: ZoeEvent[] = [];
    // This request's new keys and ids, not in the database until insertRows.
    const pendingKeys = events.length > 1 ? new Map<string, AppendResult>() : null;
    const pendingIds = events.length > 1 ? new Set<string>() : null;
    events.forEach((input, index) => {
      const id = input.id ?? Bun.randomUUIDv7();
      const key = input.idempotency_key ?? id;
      // A key the store just generated (a fresh UUIDv7) cannot be stored yet:
      // skip the lookup. UNIQUE(idempotency_key) still guards the impossible.
      const generated = input.idempotency_key === undefined && input.id === undefined;
      const existing = generated
        ? null
        : (pendingKeys?.get(key) ?? (this.q.byKey.get(key) as { id: string; seq: number; idempotency_key: string } | null));
      if (existing) {
        results.push({ id: existing.id, seq: existing.seq, idempotency_key: key, duplicate: true });
        return;
      }
      if (input.id !== undefined && (pendingIds?.has(id) || this.q.byId.get(id))) {
        throw new ConflictError(`Cannot store event ${index}: id ${id} is already used by an event with another idempotency_key`, {
          details: [{ path: `/${index}/id`, message: "Already used by another event" }],
        });
      }
      const seq = (this.counters.get(input.mode) ?? 0) + 1;
      this.counters.set(input.mode, seq);
      fresh.push({
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
      });
      const result = { id, seq, idempotency_key: key, duplicate: false };
      results.push(result);
      pendingKeys?.set(key, result);
      pendingIds?.add(id);
    });
    this.insertRows(fresh, now, sizes);
    for (const e of fresh) stored.push(e);
    return results;
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

  /** Events with seq > sinceSeq ascending; without sinceSeq the newest `limit`, ascending. */
  list(mode: Mode, options: { sinceSeq?: number; limit: number }): ZoeEvent[] {
    const rows =
      options.sinceSeq === undefined
        ? this.q.latest.all(mode, options.limit)
        : this.q.since.all(mode, options.sinceSeq, options.limit);
    return (rows as EventRow[]).map(rowToEvent);
  }

  /** The oldest unflushed events of `mode`, in seq order (the flusher's queue), after `afterSeq` and but for `exceptSeqs`. */
  unflushed(mode: Mode, limit: number, options: { afterSeq?: number; exceptSeqs?: readonly number[] } = {}): ZoeEvent[] {
    const except = options.exceptSeqs?.length ? JSON.stringify(options.exceptSeqs) : "[]";
    return (this.q.unflushed.all(mode, options.afterSeq ?? 0, except, limit) as EventRow[]).map(rowToEvent);
  }

  /** Marks exactly these events flushed; returns how many changed. */
  markFlushed(ids: string[]): number {
    const at = new Date(this.clock.now()).toISOString();
    if (ids.length === 0) return 0;
    const done = this.q.markFlushed.all(at, JSON.stringify(ids)) as { mode: Mode; bytes: number }[];
    for (const r of done) this.adjustBacklog(r.mode, -1, -r.bytes);
    return done.length;
  }

  backlog(mode: Mode): number {
    return (this.q.backlog.get(mode) as { n: number }).n;
  }

  /** When the oldest unflushed event of `mode` was stored, or null. */
  oldestUnflushedAt(mode: Mode): string | null {
    return (this.q.oldestUnflushed.get(mode) as { created_at: string } | null)?.created_at ?? null;
  }

  logFlush(entry: FlushLogEntry): void {
    this.q.logFlush.run(
      new Date(this.clock.now()).toISOString(),
      entry.mode,
      entry.count,
      entry.last_seq,
      entry.status,
      entry.error ?? null,
    );
  }

  lastFlush(mode: Mode): (FlushLogEntry & { ts: string }) | null {
    const row = this.q.lastFlush.get(mode) as (Omit<FlushLogEntry, "mode"> & { ts: string }) | null;
    return row ? { mode, ...row } : null;
  }

  putState(mode: Mode, state: Record<string, unknown>): StateSnapshot {
    const ts = new Date(this.clock.now()).toISOString();
    try {
      this.db.transaction(() => {
        this.q.putState.run(mode, ts, JSON.stringify(state));
        this.q.trimState.run(mode, mode, this.stateKeep);
      }).immediate();
    } catch (error) {
      throw storeFailure(`Cannot store state snapshot for ${mode}`, error);
    }
    return { ts, state };
  }

  latestState(mode: Mode): StateSnapshot | null {
    const row = this.q.latestState.get(mode) as { ts: string; state_json: string } | null;
    return row ? { ts: row.ts, state: JSON.parse(row.state_json) as Record<string, unknown> } : null;
  }

  /**
   * Deletes flushed events older than the retention period, in small chunks so
   * ingest is never blocked for long. The newest event of each mode is kept,
   * so MAX(seq) — the counter recovered at start — never goes backwards.
   */
  prune(): number {
    const cutoff = new Date(this.clock.now() - this.retentionMs).toISOString();
    let total = 0;
    for (const mode of MODES) {
      const keep = this.lastSeq(mode);
      for (;;) {
        const n = this.db
          .query(
            "DELETE FROM local_events WHERE rowid IN (SELECT rowid FROM local_events WHERE flushed = 1 AND flushed_at < ? AND mode = ? AND seq < ? LIMIT 5000)",
          )
          .run(cutoff, mode, keep).changes;
        total += n;
        if (n < 5000) break;
      }
    }
    return total;
  }

  /** Runs `PRAGMA quick_check`; true when the database file is sound. */
  healthy(): boolean {
    try {
      return (this.db.query("PRAGMA quick_check").get() as { quick_check: string }).quick_check === "ok";
    } catch {
      return false;
    }
  }

  /** Cheap liveness probe: the database answers a query. */
  ping(): boolean {
    try {
      this.db.query("SELECT 1").get();
      return true;
    } catch {
      return false;
    }
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    if (this.pending.length > 0) this.drain();
    this.checkpointer?.stop();
    try {
      this.db.run("PRAGMA wal_checkpoint(TRUNCATE)");
    } catch {
      // A busy checkpoint is harmless: the WAL is replayed on next open.
    }
    this.db.close();
    this.lock?.close();
  }
}

export type { ZoeEvent };
