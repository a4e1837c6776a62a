// Commits that need not wait for the disk. With synchronous=FULL every COMMIT
// fsyncs the WAL; flush marks and flush-log rows come about 80 times a second
// in a drain, and an fsync each would hold the event loop longer than the work.
// Losing them to a power cut only means those events are sent again (answered
// duplicate) and a row less in an audit log; the next synced commit (an event
// append) makes them durable anyway, as the WAL is synced up to its end.
import type { Database } from "bun:sqlite";

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
