// A store file as the version before store identities made it: local schema 3
// (sql/local 001-003), seqs from 1 per mode, some of them flushed. For the
// upgrade-in-place tests of the local store and of a Supabase project.
import { Database } from "bun:sqlite";
import { migrate, readMigrations } from "../../src/store/migrate.ts";

export interface OldEvent {
  id: string;
  mode: "paper" | "live";
  seq: number;
  body: string;
  idempotency_key: string;
  flushed: boolean;
}

/** Writes a schema-3 store at `path` holding `events` (in order); returns them. */
export function writeSchema3Store(
  path: string,
  events: Omit<OldEvent, "id" | "idempotency_key" | "body">[],
): OldEvent[] {
  const db = new Database(path, { create: true, strict: true });
  try {
    db.run("PRAGMA journal_mode = WAL");
    if (
      migrate(
        db,
        readMigrations().filter((m) => m.version <= 3),
      ) !== 3
    )
      throw new Error("not schema 3");
    const insert = db.query(
      "INSERT INTO local_events (id, mode, ts, seq, source, type, subtype, body, idempotency_key, flushed, created_at) VALUES (?, ?, ?, ?, 'old', 'ORDER', 'TICK', ?, ?, ?, ?)",
    );
    const out = events.map((e) => {
      const id = Bun.randomUUIDv7();
      const row = { ...e, id, body: `old ${e.mode} ${e.seq}`, idempotency_key: `old-${id}` };
      insert.run(
        id,
        e.mode,
        "2026-11-30T12:00:00.000Z",
        e.seq,
        row.body,
        row.idempotency_key,
        e.flushed ? 1 : 0,
        "2026-11-30T12:00:00.000Z",
      );
      return row;
    });
    db.run(
      "UPDATE local_backlog SET events = (SELECT COUNT(*) FROM local_events e WHERE e.mode = local_backlog.mode AND e.flushed = 0)",
    );
    return out;
  } finally {
    db.close();
  }
}
