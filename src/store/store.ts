// The durable local event store: SQLite in WAL mode, seqs gapless per mode
// within each start's range (ranges.ts), the store's identity.
// EventStore is the one face the rest of the service sees; the concerns live
// next to it: opening (open.ts), the group-commit writer (writer.ts), reads
// (queries.ts), the flush queue and backlog accounting (backlog.ts),
// retention (retention.ts) and the stored row (rows.ts).
import type { Database } from "bun:sqlite";
import { type Checkpointer, startCheckpointer } from "./checkpointer.ts";
import { type Clock, systemClock } from "../lib/clock.ts";
import type { SynchronousLevel } from "../config.ts";
import { StoreUnavailableError } from "../domain/errors.ts";
import { type EventInput, MODES, type Mode, type StoredEvent } from "../../supabase/functions/_shared/event-schema.ts";
import { Backlog, type BacklogUsage } from "./backlog.ts";
import { openDatabase } from "./open.ts";
import { type EventFilter, type FlushLogEntry, type ListOptions, Queries, type StateSnapshot } from "./queries.ts";
import { pruneAll, type PruneStep, pruneStep } from "./retention.ts";
import { WalSync } from "./wal-sync.ts";
import { type AppendResult, Writer } from "./writer.ts";
import { type CurrentRange, type SeqRange, SeqRanges } from "./ranges.ts";

export { EVENT_BYTES_SQL, EVENT_OVERHEAD_BYTES, rowToEvent, storeFailure } from "./rows.ts";
export type {
  AppendResult,
  BacklogUsage,
  CurrentRange,
  EventFilter,
  FlushLogEntry,
  ListOptions,
  SeqRange,
  StateSnapshot,
  StoredEvent,
};

export interface StoreOptions {
  path: string;
  /** Default FULL: an acknowledged commit survives power loss (NORMAL: only a process crash). */
  synchronous?: SynchronousLevel;
  busyTimeoutMs?: number;
  /** Flushed events older than this are pruned; unflushed ones never are. */
  retentionMs?: number;
  /** Newest state snapshots kept per mode. */
  stateKeep?: number;
  /** Commit concurrent appends together (default true). */
  groupCommit?: boolean;
  clock?: Clock;
  /** Checkpoint the WAL from a worker thread, at the latest this many ms after a commit (0 or unset: only SQLite's automatic checkpoint). */
  checkpointIntervalMs?: number;
  /**
   * The lowest first seq of this start's range of `mode` (ranges.ts): the
   * service passes rangeFloor(start time, the remote's highest seq). Unset: 0,
   * the range continues right above the store's max (tools and tests that
   * want small seqs).
   */
  seqFloor?: (mode: Mode) => number;
  /** Reports an error thrown by an onAppend listener (default: console.error). */
  onListenerError?: (error: unknown) => void;
}

type AppendListener = (events: StoredEvent[]) => void;

export function openStore(options: StoreOptions): EventStore {
  const { db, lock } = openDatabase(options);
  return new EventStore(db, lock, options);
}

export class EventStore {
  readonly path: string;
  readonly db: Database;
  private readonly lock: Database | null;
  private readonly clock: Clock;
  private readonly retentionMs: number;
  private readonly onListenerError: (error: unknown) => void;
  private readonly listeners = new Set<AppendListener>();
  private readonly writer: Writer;
  private readonly walSync: WalSync | null;
  private readonly backlogs: Backlog;
  private readonly queries: Queries;
  private readonly checkpointer: Checkpointer | null;
  private readonly pruneOne: PruneStep;
  private readonly ranges: SeqRanges;
  private closed = false;

  constructor(db: Database, lock: Database | null, options: StoreOptions) {
    this.db = db;
    this.lock = lock;
    this.path = options.path;
    this.clock = options.clock ?? systemClock;
    this.retentionMs = options.retentionMs ?? 7 * 86_400_000;
    this.onListenerError =
      options.onListenerError ?? ((error) => console.error("zoe-local: append listener failed:", error));
    const maxSeq = db.query("SELECT COALESCE(MAX(seq), 0) AS seq FROM local_events WHERE mode = ?");
    const lastSeqs = new Map<Mode, number>();
    for (const mode of MODES) lastSeqs.set(mode, (maxSeq.get(mode) as { seq: number }).seq);
    this.ranges = new SeqRanges(db, {
      localMax: lastSeqs,
      floor: options.seqFloor ?? (() => 0),
      startedAt: new Date(this.clock.now()).toISOString(),
    });
    const counterStarts = new Map(MODES.map((mode) => [mode, this.ranges.counterStart(mode)]));
    this.backlogs = new Backlog(db, this.clock, (mode) => this.lastSeq(mode));
    this.queries = new Queries(db, {
      clock: this.clock,
      stateKeep: options.stateKeep ?? 100,
      lastSeq: (mode) => this.lastSeq(mode),
    });
    // FULL and EXTRA: the group commit's fsync runs off the event loop (wal-sync.ts).
    const full = options.synchronous === "FULL" || options.synchronous === "EXTRA";
    this.walSync =
      full && (options.groupCommit ?? true) && options.path !== ":memory:" ? new WalSync(options.path) : null;
    let counted = new Map<Mode, BacklogUsage>();
    this.writer = new Writer(db, {
      clock: this.clock,
      groupCommit: options.groupCommit ?? true,
      lastSeqs,
      counterStarts,
      beforeCommit: (stored, sizes) => {
        this.ranges.beforeCommit(stored);
        counted = this.backlogs.record(stored, sizes);
      },
      onCommit: (stored) => {
        this.ranges.committed();
        this.backlogs.added(counted);
        counted = new Map();
        this.checkpointer?.committed(stored.length);
      },
      onRollback: () => this.ranges.rolledBack(),
      onDurable: (stored) => this.committed(stored),
      walSync: this.walSync ? { sync: this.walSync, synchronous: options.synchronous ?? "NORMAL" } : null,
    });
    this.pruneOne = pruneStep(
      db,
      () => new Date(this.clock.now() - this.retentionMs).toISOString(),
      (mode) => this.lastSeq(mode),
    );
    this.checkpointer =
      options.checkpointIntervalMs && options.path !== ":memory:"
        ? startCheckpointer({ path: options.path, intervalMs: options.checkpointIntervalMs })
        : null;
  }

  /** After each commit, before the callers hear back: tell the listeners. */
  private committed(stored: StoredEvent[]): void {
    if (stored.length === 0) return;
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

  /** The store's id (a UUID v4), made with the store and kept in it; a backup copy has the same. */
  get storeId(): string {
    return this.ranges.storeId;
  }

  /** When the store was created (for a store made before identities: its oldest event). */
  get createdAt(): string {
    return this.ranges.createdAt;
  }

  /** When this start of the store began (the time its ranges were opened). */
  get startedAt(): string {
    return this.ranges.startedAt;
  }

  /** This start's range of `mode`: where its seqs begin (recorded once its first event is). */
  currentRange(mode: Mode): CurrentRange {
    return this.ranges.currentRange(mode);
  }

  /** The newest `limit` recorded seq ranges of `mode`, newest first. */
  seqRanges(mode: Mode, limit?: number): SeqRange[] {
    return this.ranges.list(mode, limit);
  }

  /** Recomputes the backlog counters from the rows (a repair tool: one pass over the unflushed rows). */
  recountBacklog(): void {
    this.backlogs.recount();
  }

  /** Unflushed events (and their bytes) of `mode`, or of all modes; kept in memory, no query. */
  backlogUsage(mode?: Mode): BacklogUsage {
    return this.backlogs.get(mode);
  }

  /**
   * For code that moves events in or out of the queue itself (the quarantine):
   * keeps backlogUsage exact. The triggers on local_events have already
   * counted the change in local_backlog; this reloads the in-memory copy.
   */
  reloadBacklog(): void {
    this.backlogs.refresh();
  }

  /** Highest seq of `mode` whose commit is durable and answered (0 when none); readers see no further. */
  lastSeq(mode: Mode): number {
    return this.writer.lastSeq(mode);
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
    return this.writer.append(events);
  }

  /** Events with seq > sinceSeq ascending; without sinceSeq the newest `limit`, ascending; beforeSeq and filter narrow them. */
  list(mode: Mode, options: ListOptions): StoredEvent[] {
    return this.queries.list(mode, options);
  }

  /** Events with seq > sinceSeq ascending, each as [seq, JSON text equal to JSON.stringify of the event]: the replay's fast path. */
  listJson(mode: Mode, sinceSeq: number, limit: number): [seq: number, json: string][] {
    return this.queries.listJson(mode, sinceSeq, limit);
  }

  /** The oldest unflushed events of `mode`, in seq order (the flusher's queue), after `afterSeq` and but for `exceptSeqs`. */
  unflushed(
    mode: Mode,
    limit: number,
    options: { afterSeq?: number; exceptSeqs?: readonly number[] } = {},
  ): StoredEvent[] {
    return this.backlogs.unflushed(mode, limit, options);
  }

  /** Marks exactly these events flushed; returns how many changed. */
  markFlushed(ids: string[]): number {
    return this.backlogs.markFlushed(ids);
  }

  /** Marks the unflushed events of `mode` in (afterSeq, throughSeq] flushed if there are exactly `expected`; false (nothing changed) otherwise. */
  markFlushedRange(mode: Mode, afterSeq: number, throughSeq: number, expected: number): boolean {
    return this.backlogs.markFlushedRange(mode, afterSeq, throughSeq, expected);
  }

  /** Unflushed events of `mode` (the counter, no COUNT). */
  backlog(mode: Mode): number {
    return this.backlogs.get(mode).events;
  }

  /** When the oldest unflushed event of `mode` was stored, or null. */
  oldestUnflushedAt(mode: Mode): string | null {
    return this.backlogs.oldestAt(mode);
  }

  logFlush(entry: FlushLogEntry): void {
    this.queries.logFlush(entry);
  }

  lastFlush(mode: Mode): (FlushLogEntry & { ts: string }) | null {
    return this.queries.lastFlush(mode);
  }

  putState(mode: Mode, state: Record<string, unknown>): StateSnapshot {
    return this.queries.putState(mode, state);
  }

  latestState(mode: Mode): StateSnapshot | null {
    return this.queries.latestState(mode);
  }

  /** Deletes every flushed event older than the retention period, in chunks, at once (src/store/retention.ts). */
  prune(): number {
    return pruneAll(this.pruneOne);
  }

  /** Deletes at most `limit` flushed events past retention: one step, for a caller that yields between steps. */
  pruneSome(limit?: number): number {
    return this.pruneOne(limit);
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
    this.writer.flushPending();
    this.walSync?.close();
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
