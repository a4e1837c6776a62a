// The group-commit writer: seqs gapless per mode within the start's range
// (ranges.ts says where it begins), assigned inside the
// transaction that inserts the event. Concurrent appends are group-committed:
// every request that arrives while the event loop is busy shares one
// transaction, and each caller's promise settles only after the commit that
// holds its events is durable (with a WalSync: after the WAL's fdatasync on
// the thread pool, see wal-sync.ts). Only then do readers and listeners see
// the events: the durable seq of each mode is the readers' upper bound.
// What one request's events become as rows (duplicates, seqs, INSERTs) is
// inserter.ts; this module owns the transaction around them.
import type { Database } from "bun:sqlite";
import type { Clock } from "../lib/clock.ts";
import type { SynchronousLevel } from "../config.ts";
import { StoreUnavailableError } from "../domain/errors.ts";
import type { EventInput, Mode, StoredEvent } from "../../supabase/functions/_shared/event-schema.ts";
import { type AppendResult, Inserter } from "./inserter.ts";
import { storeFailure } from "./rows.ts";
import type { WalSync } from "./wal-sync.ts";

export type { AppendResult };

interface PendingAppend {
  events: EventInput[];
  resolve(results: AppendResult[]): void;
  reject(error: unknown): void;
}

type Statement = ReturnType<Database["query"]>;

export interface WriterOptions {
  clock: Clock;
  /** Commit concurrent appends together. */
  groupCommit: boolean;
  /** The highest stored seq of each mode: what readers may see until the next commit. */
  lastSeqs: ReadonlyMap<Mode, number>;
  /** One below the first seq each mode assigns (the start of its range); default lastSeqs. */
  counterStarts?: ReadonlyMap<Mode, number>;
  /** Called inside each transaction, before COMMIT, with the new events (unsorted) and their backlog bytes. */
  beforeCommit(stored: StoredEvent[], sizes: number[]): void;
  /** Called after each commit with the new events (unsorted). */
  onCommit(stored: StoredEvent[]): void;
  /** Called when a transaction that reached beforeCommit (or may have) rolled back. */
  onRollback?(): void;
  /** Called once a commit is durable, with its new events (unsorted), before any of its callers hears back. */
  onDurable(stored: StoredEvent[]): void;
  /**
   * Syncs the WAL off the event loop after each group commit; the group's
   * transaction then runs with synchronous=NORMAL, and `synchronous` is the
   * level the connection returns to for every other write. Null: SQLite's
   * own synchronous setting decides, inside COMMIT.
   */
  walSync?: { sync: WalSync; synchronous: SynchronousLevel } | null;
}

export class Writer {
  private readonly db: Database;
  private readonly clock: Clock;
  private readonly groupCommit: boolean;
  private readonly beforeCommit: WriterOptions["beforeCommit"];
  private readonly onCommit: WriterOptions["onCommit"];
  private readonly onDurable: WriterOptions["onDurable"];
  private readonly onRollback: () => void;
  private readonly walSync: WalSync | null;
  private readonly counters: Map<Mode, number>;
  /** Highest seq per mode whose commit is durable and answered: what readers may see. */
  private readonly durable: Map<Mode, number>;
  /** Set when a WAL sync failed: what is in the WAL may not be on disk, so nothing more is acknowledged. */
  private broken: Error | null = null;
  private pending: PendingAppend[] = [];
  private scheduled = false;
  private readonly inserter: Inserter;
  // Transaction control as cached statements: db.run() would compile the SQL
  // again on every call, several times per request on the ingest path.
  private readonly tx: Record<"begin" | "commit" | "savepoint" | "release" | "rollbackTo", Statement>;
  /** synchronous=NORMAL for the group's transaction and back, with a WalSync. */
  private readonly syncLevel: { relaxed: Statement; restored: Statement } | null;

  constructor(db: Database, options: WriterOptions) {
    this.db = db;
    this.clock = options.clock;
    this.groupCommit = options.groupCommit;
    this.beforeCommit = options.beforeCommit;
    this.onCommit = options.onCommit;
    this.onDurable = options.onDurable;
    this.onRollback = options.onRollback ?? (() => {});
    this.walSync = options.walSync?.sync ?? null;
    this.syncLevel = options.walSync
      ? {
          relaxed: db.query("PRAGMA synchronous = NORMAL"),
          restored: db.query(`PRAGMA synchronous = ${options.walSync.synchronous}`),
        }
      : null;
    this.counters = new Map(options.counterStarts ?? options.lastSeqs);
    this.durable = new Map(options.lastSeqs);
    this.inserter = new Inserter(db, this.counters);
    this.tx = {
      begin: db.query("BEGIN IMMEDIATE"),
      commit: db.query("COMMIT"),
      savepoint: db.query("SAVEPOINT request"),
      release: db.query("RELEASE request"),
      rollbackTo: db.query("ROLLBACK TO request"),
    };
  }

  /** Highest seq of `mode` committed durably and answered (0 when none): readers see no further. */
  lastSeq(mode: Mode): number {
    return this.durable.get(mode) ?? 0;
  }

  /** Stores the events of one request atomically; resolves once the commit that holds them is durable. */
  append(events: EventInput[]): Promise<AppendResult[]> {
    if (this.broken) return Promise.reject(this.broken);
    if (!this.groupCommit) {
      try {
        const { outcomes, stored } = this.commit([{ events, resolve() {}, reject() {} }]);
        this.durableNow(stored);
        const outcome = outcomes[0]!;
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
    if (this.pending.length > 0) this.drain(true);
  }

  private drain(now = false): void {
    this.scheduled = false;
    if (this.pending.length === 0) return; // close() already drained it
    // While the previous group's sync runs, its successor keeps gathering:
    // the loop stays free to read requests, and one commit and one sync then
    // carry all of them (committing now would wait for a sync of its own anyway).
    if (!now && this.walSync && !this.walSync.idle()) return;
    const batch = this.pending;
    this.pending = [];
    let committed: { outcomes: (AppendResult[] | Error)[]; stored: StoredEvent[] };
    try {
      committed = this.commit(batch);
    } catch (error) {
      for (const p of batch) p.reject(error);
      return;
    }
    const settle = () =>
      batch.forEach((p, i) => {
        const o = committed.outcomes[i]!;
        if (o instanceof Error) p.reject(o);
        else p.resolve(o);
      });
    // A group with no new rows (repeats, refusals) still waits for a sync in
    // flight: a repeat's answer names an event that may not be on disk yet.
    if (!this.walSync || (committed.stored.length === 0 && this.walSync.idle())) {
      this.durableNow(committed.stored);
      settle();
      return;
    }
    // A request alone, nothing syncing (a bot's steady trickle): sync here. The
    // loop waits for the disk meanwhile, but requests that arrive are read
    // right after and commit together on the thread pool's sync.
    if (batch.length === 1 && this.walSync.idle()) {
      const error = this.walSync.syncNow();
      if (error) {
        this.syncFailed(error, batch);
        return;
      }
      this.durableNow(committed.stored);
      settle();
      return;
    }
    this.walSync.after((error) => {
      if (error) {
        this.syncFailed(error, batch);
        return;
      }
      this.durableNow(committed.stored);
      settle();
      if (this.pending.length > 0 && !this.scheduled) {
        this.scheduled = true;
        setImmediate(() => this.drain());
      }
    });
  }

  /** The frames may never reach the disk: refuse these and every later append; a restart reopens the database as it is on disk. */
  private syncFailed(error: Error, batch: PendingAppend[]): void {
    this.broken ??= new StoreUnavailableError(
      `Cannot store events: syncing the WAL to disk failed (${error.message}); restart the service`,
      { cause: error },
    );
    for (const p of [...batch, ...this.pending.splice(0)]) p.reject(this.broken);
  }

  /** `stored` is durable: readers may see it, listeners hear of it. */
  private durableNow(stored: StoredEvent[]): void {
    if (stored.length === 0) return;
    for (const e of stored) if (e.seq > (this.durable.get(e.mode) ?? 0)) this.durable.set(e.mode, e.seq);
    this.onDurable(stored);
  }

  /** One transaction for all `batch` requests; a failing request rolls back alone. */
  private commit(batch: PendingAppend[]): { outcomes: (AppendResult[] | Error)[]; stored: StoredEvent[] } {
    const before = new Map(this.counters);
    const now = new Date(this.clock.now()).toISOString();
    const stored: StoredEvent[] = [];
    const sizes: number[] = []; // backlog bytes of stored[i]
    const outcomes: (AppendResult[] | Error)[] = [];
    try {
      this.syncLevel?.relaxed.run();
      this.tx.begin.run();
    } catch (error) {
      this.restoreSyncLevel();
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
          outcomes.push(this.inserter.insertRequest(request.events, now, stored, sizes));
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
      this.onRollback();
      this.restoreSyncLevel();
      throw storeFailure("Cannot store events", error);
    }
    this.restoreSyncLevel();
    this.onCommit(stored);
    return { outcomes, stored };
  }

  private restoreSyncLevel(): void {
    try {
      this.syncLevel?.restored.run();
    } catch {
      // Setting a pragma fails only on a closed connection: nothing to restore.
    }
  }
}
