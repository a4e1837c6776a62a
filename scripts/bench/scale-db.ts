// Builds (or reuses) a large store for the scale section: `flushed` flushed
// and `unflushed` unflushed events in mode paper, with the service's own
// migrations, written by bulk SQL (a recursive CTE per million rows, in key
// order so every B-tree grows at its right edge). The file is cached under
// .tmp/bench-scale/, keyed by the row counts and a hash of the migrations; a
// rerun only removes what the previous run added (rows past the built seqs).
// Args (JSON): { flushed, unflushed, dir? }. Prints { path, built, buildMs, restoreMs, bytes }.
import { Database } from "bun:sqlite";
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync } from "node:fs";
import { join } from "node:path";
import { LOCAL_MIGRATIONS_DIR, migrate } from "../../src/store/migrate.ts";
import { EVENT_BYTES_SQL } from "../../src/store/rows.ts";
import { childArgs, reply, ROOT } from "./lib.ts";

export interface ScaleDbArgs {
  flushed: number;
  unflushed: number;
  dir?: string;
}

export interface ScaleDb {
  path: string;
  built: boolean;
  buildMs: number;
  restoreMs: number;
  bytes: number;
  /** Highest seq in mode paper as built. */
  lastSeq: number;
}

const BUILDER_VERSION = 1;
const CHUNK = 1_000_000;
/** The built events are this old at the newest: inside any retention period (ZOE_RETENTION_DAYS ≥ 1) for days. */
const SPAN_MS = 3_600_000;

function migrationsHash(): string {
  const h = createHash("sha256").update(String(BUILDER_VERSION));
  for (const f of readdirSync(LOCAL_MIGRATIONS_DIR).sort())
    h.update(f).update(readFileSync(join(LOCAL_MIGRATIONS_DIR, f)));
  return h.digest("hex").slice(0, 12);
}

function insertChunk(
  db: Database,
  from: number,
  to: number,
  flushed: boolean,
  startJd: number,
  stepDays: number,
): void {
  db.query(
    `WITH RECURSIVE n(i) AS (SELECT ?1 UNION ALL SELECT i + 1 FROM n WHERE i < ?2)
     INSERT INTO local_events (id, mode, ts, seq, source, type, subtype, symbol, severity, body, meta_json, idempotency_key, flushed, flushed_at, created_at)
     SELECT printf('01900000-0000-7000-8000-%012x', i), 'paper', strftime('%Y-%m-%dT%H:%M:%fZ', ?3 + i * ?4), i, 'bot', 'ORDER', 'BUY_SUBMITTED', 'AAPL', 'info',
            'submitted buy 10 AAPL @ 187.20 limit, strategy momentum-5m, order ' || i,
            '{"order_id":"ord-' || i || '","qty":10,"limit":187.2,"strategy":"momentum-5m"}',
            printf('01900000-0000-7000-8000-%012x', i), ?5, CASE WHEN ?5 = 1 THEN strftime('%Y-%m-%dT%H:%M:%fZ', ?3 + i * ?4) END,
            strftime('%Y-%m-%dT%H:%M:%fZ', ?3 + i * ?4)
     FROM n`,
  ).run(from, to, startJd, stepDays, flushed ? 1 : 0);
}

function build(path: string, flushed: number, unflushed: number): void {
  const tmp = `${path}.building`;
  for (const suffix of ["", "-wal", "-shm"]) rmSync(tmp + suffix, { force: true });
  const db = new Database(tmp, { create: true, strict: true });
  db.run("PRAGMA journal_mode = OFF");
  db.run("PRAGMA synchronous = OFF");
  db.run("PRAGMA locking_mode = EXCLUSIVE");
  db.run("PRAGMA cache_size = -262144"); // 256 MiB: the right edges and interior pages stay hot
  migrate(db);
  const total = flushed + unflushed;
  const stepDays = SPAN_MS / 86_400_000 / Math.max(1, total);
  const startJd = Date.now() / 86_400_000 + 2440587.5 - SPAN_MS / 86_400_000;
  for (let from = 1; from <= total; from += CHUNK) {
    const to = Math.min(total, from + CHUNK - 1);
    db.transaction(() => {
      if (from <= flushed) insertChunk(db, from, Math.min(to, flushed), true, startJd, stepDays);
      if (to > flushed) insertChunk(db, Math.max(from, flushed + 1), to, false, startJd, stepDays);
    })();
  }
  // The rows went in past the writer: count the backlog as the writer would have.
  db.run(
    `UPDATE local_backlog SET events = c.events, bytes = c.bytes FROM (SELECT mode, COUNT(*) AS events, COALESCE(SUM(${EVENT_BYTES_SQL}), 0) AS bytes FROM local_events WHERE flushed = 0 GROUP BY mode) AS c WHERE local_backlog.mode = c.mode`,
  );
  db.run("PRAGMA journal_mode = WAL");
  db.close();
  renameSync(tmp, path);
}

/** Takes out what a previous run added: rows past the built seqs, any live rows, snapshots, the flush log. */
function restore(path: string, lastSeq: number, unflushed: number): void {
  const db = new Database(path, { strict: true });
  db.run("PRAGMA journal_mode = WAL");
  db.transaction(() => {
    db.query("DELETE FROM local_events WHERE mode = 'paper' AND seq > ?").run(lastSeq);
    db.run("DELETE FROM local_events WHERE mode = 'live'");
    db.run("DELETE FROM local_state_snapshots");
    db.run("DELETE FROM local_flush_log");
    db.run("DELETE FROM local_quarantine");
    // Anything a run flushed (or quarantined) among the unflushed tail goes back to the queue.
    db.query(
      "UPDATE local_events SET flushed = 0, flushed_at = NULL WHERE mode = 'paper' AND seq > ? AND flushed <> 0",
    ).run(lastSeq - unflushed);
  })();
  db.run("PRAGMA wal_checkpoint(TRUNCATE)");
  db.close();
}

export function scaleDb(args: ScaleDbArgs): ScaleDb {
  const dir = args.dir ?? join(ROOT, ".tmp", "bench-scale");
  mkdirSync(dir, { recursive: true });
  const name = `scale-${args.flushed}-${args.unflushed}-${migrationsHash()}.db`;
  const path = join(dir, name);
  // Other builds (other sizes, older schemas) only take disk space.
  for (const f of readdirSync(dir))
    if (f.startsWith("scale-") && !f.startsWith(name)) rmSync(join(dir, f), { force: true });
  const lastSeq = args.flushed + args.unflushed;
  let built = false;
  const t0 = performance.now();
  if (!existsSync(path)) {
    build(path, args.flushed, args.unflushed);
    built = true;
  }
  const buildMs = performance.now() - t0;
  const t1 = performance.now();
  restore(path, lastSeq, args.unflushed);
  return { path, built, buildMs, restoreMs: performance.now() - t1, bytes: statSync(path).size, lastSeq };
}

if (import.meta.main) reply(scaleDb(childArgs<ScaleDbArgs>()));
