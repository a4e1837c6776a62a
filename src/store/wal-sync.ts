// Durability off the event loop. With ZOE_SYNCHRONOUS=FULL SQLite fsyncs the
// WAL inside COMMIT, and the event loop waits the ~0.3-4 ms of that fsync with
// every request behind it. Instead the writer commits its group with
// synchronous=NORMAL (the frames reach the OS, not yet the disk) and then asks
// for an fdatasync of the WAL file here, which runs on Bun's thread pool;
// callers are answered only when it returns, so an answer still means the
// event is on disk (the same state FULL reaches: commit frames written, then
// the WAL synced). Meanwhile the loop parses the next requests and commits the
// next group, whose sync starts as soon as this one returns.
import { closeSync, fdatasync, fdatasyncSync, openSync } from "node:fs";
import type { Database } from "bun:sqlite";

type Done = (error: Error | null) => void;

export class WalSync {
  private readonly path: string;
  private fd: number | null = null;
  private waiting: Done[] = [];
  private inFlight: Done[] | null = null;
  /** A thread-pool fdatasync holds the descriptor (it must not be closed under it). */
  private syncing = false;
  private closed = false;

  /** `dbPath`: the database file; its WAL is `<dbPath>-wal`. */
  constructor(dbPath: string) {
    this.path = `${dbPath}-wal`;
  }

  /** No sync running or waiting: every commit so far is on disk. */
  idle(): boolean {
    return this.inFlight === null && this.waiting.length === 0;
  }

  /** Calls `done` once an fdatasync of the WAL that began after this call has returned (with its error, if it failed). */
  after(done: Done): void {
    if (this.closed) {
      done(new Error(`Cannot sync ${this.path}: the store is closed`));
      return;
    }
    this.waiting.push(done);
    if (!this.inFlight) this.start();
  }

  /**
   * An fdatasync on this thread, now; only while idle(). For a commit that is
   * alone (one request, nothing syncing): the hop to the thread pool and back
   * (a futex wake, an eventfd, a loop wake-up) costs more CPU than the sync,
   * and nobody waits behind it. Returns the error, or null once on disk.
   */
  syncNow(): Error | null {
    if (this.closed) return new Error(`Cannot sync ${this.path}: the store is closed`);
    try {
      fdatasyncSync((this.fd ??= openSync(this.path, "r")));
      return null;
    } catch (error) {
      return error as Error;
    }
  }

  private start(): void {
    const batch = this.waiting;
    this.waiting = [];
    let fd: number;
    try {
      // Opened on first use: SQLite creates the WAL with the first write.
      fd = this.fd ??= openSync(this.path, "r");
    } catch (error) {
      for (const done of batch) done(error as Error);
      return;
    }
    this.inFlight = batch;
    this.syncing = true;
    fdatasync(fd, (error) => {
      this.syncing = false;
      if (this.closed) {
        closeSync(fd); // close() settled this batch already
        return;
      }
      this.inFlight = null;
      for (const done of batch) done(error ?? null);
      if (this.waiting.length > 0) this.start();
    });
  }

  /** At close: one synchronous fdatasync covers everything committed; settles every waiting caller. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    const batch = [...(this.inFlight ?? []), ...this.waiting];
    this.inFlight = null;
    this.waiting = [];
    let error: Error | null = null;
    try {
      if (this.fd !== null) fdatasyncSync(this.fd);
    } catch (e) {
      error = e as Error;
    }
    for (const done of batch) done(error);
    // Closing the descriptor under a thread-pool fdatasync could sync whatever
    // file reuses its number: then the callback closes it.
    if (this.fd !== null && !this.syncing) closeSync(this.fd);
    this.fd = null;
  }
}

// Commits that need not wait for the disk. With synchronous=FULL every COMMIT
// fsyncs the WAL; flush marks and flush-log rows come about 80 times a second
// in a drain, and an fsync each would hold the event loop longer than the work.
// Losing them to a power cut only means those events are sent again (answered
// duplicate) and a row less in an audit log; the next synced commit (an event
// append) makes them durable anyway, as the WAL is synced up to its end.
const levels = new WeakMap<Database, number>();

/** Runs `fn` (its own transaction or autocommit statements) at synchronous=NORMAL, then restores the connection's level. */
export function withoutSync<T>(db: Database, fn: () => T): T {
  let level = levels.get(db);
  if (level === undefined)
    levels.set(db, (level = (db.query("PRAGMA synchronous").get() as { synchronous: number }).synchronous));
  if (level <= 1) return fn();
  db.run("PRAGMA synchronous = NORMAL");
  try {
    return fn();
  } finally {
    db.run(`PRAGMA synchronous = ${level}`);
  }
}
