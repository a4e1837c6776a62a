// Disaster recovery: a lost store rebuilt from Supabase, the system of record.
// The remote's recent events go in with the ids, keys and seqs Supabase holds,
// already marked flushed (they are there: sending them again would only be
// answered "duplicate"), with each mode's latest state snapshot. Nothing here
// assigns a seq: the service's next start begins each mode's range above the
// highest local seq, so events assigned after the restore come after every
// restored one. Pages go in one transaction each, and every insert ignores
// what is already there, so a restore cut short (kill -9, Ctrl-C, the network)
// is completed by running it again, and a second run changes nothing.
import type { Database } from "bun:sqlite";
import { StartupError } from "../domain/errors.ts";
import { MODES, type Mode, type StoredEvent } from "../../supabase/functions/_shared/event-schema.ts";
import { openDatabase } from "./open.ts";

/** Where the events come from: Supabase's tables, read in seq order. */
export interface RestoreSource {
  /** How many events of `mode` since `sinceIso` (null when the remote cannot say). */
  count(mode: Mode, sinceIso: string): Promise<number | null>;
  /** Up to `limit` events of `mode` with ts ≥ `sinceIso` and seq ≥ `fromSeq`, ordered by seq, then id. */
  page(mode: Mode, sinceIso: string, fromSeq: number, limit: number): Promise<StoredEvent[]>;
  /** The highest seq Supabase holds for `mode`, whatever its age (null: none). */
  maxSeq(mode: Mode): Promise<number | null>;
  /** The mode's latest state snapshot (zoe_state), or null. */
  latestState(mode: Mode): Promise<{ ts: string; state: unknown } | null>;
}

export interface RestoreProgress {
  mode: Mode;
  /** Events read from the remote so far for this mode. */
  read: number;
  /** What the remote counted for this mode (null: unknown). */
  total: number | null;
}

export interface RestoreOptions {
  path: string;
  source: RestoreSource;
  /** Events older than this (by their ts) stay in Supabase only. */
  since: Date;
  /** Restore into a store that already holds events or snapshots. */
  force?: boolean;
  modes?: readonly Mode[];
  /** Events per remote read and local transaction. */
  pageSize?: number;
  onProgress?: (progress: RestoreProgress) => void;
  signal?: AbortSignal;
  /** The flushed_at stamp of the restored rows. */
  now?: () => Date;
}

export interface ModeRestore {
  mode: Mode;
  /** Read from the remote. */
  read: number;
  /** New rows in the store. */
  inserted: number;
  /** Already in the store (same id): a rerun. */
  present: number;
  /**
   * Remote events whose seq or idempotency key is taken locally by a
   * different event: kept out, the local one stays. Only a --force restore
   * into a store with events of its own, or a project whose old rows share
   * seqs (written before seqs were unique), has any.
   */
  conflicts: { id: string; seq: number; reason: string }[];
  /** The highest seq Supabase holds for the mode (null: none). */
  remoteMaxSeq: number | null;
  /** The highest seq in the store after the restore (0: none). */
  localMaxSeq: number;
  /** A state snapshot was written (false: none remote, or the same one is there). */
  state: boolean;
}

export interface RestoreReport {
  path: string;
  since: string;
  modes: ModeRestore[];
}

/** Thrown when the store is not empty and --force was not given. */
export class StoreNotEmptyError extends StartupError {
  readonly events: number;
  readonly snapshots: number;
  constructor(path: string, events: number, snapshots: number, looksRestored: boolean) {
    super(
      "store_not_empty",
      `Cannot restore into ${path}: it holds ${events} events and ${snapshots} state snapshots. ` +
        (looksRestored
          ? "They all look restored (flushed, no flush log): a restore cut short? Run it again with --force to complete it."
          : "Restore into a new file (ZOE_DB_PATH), or pass --force to add what Supabase holds beside them."),
    );
    this.name = "StoreNotEmptyError";
    this.events = events;
    this.snapshots = snapshots;
  }
}

const INSERT_SQL = `INSERT OR IGNORE INTO local_events
  (id, mode, ts, seq, source, type, subtype, symbol, severity, body, meta_json, idempotency_key, flushed, flushed_at, created_at)
  VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 1, ?, ?)`;

export async function restoreFromRemote(options: RestoreOptions): Promise<RestoreReport> {
  const pageSize = options.pageSize ?? 1000;
  const modes = options.modes ?? MODES;
  const sinceIso = options.since.toISOString();
  const now = options.now ?? (() => new Date());
  const { db, lock } = openDatabase({ path: options.path, synchronous: "FULL" });
  try {
    refuseNonEmpty(db, options.path, options.force ?? false);
    const report: RestoreReport = { path: options.path, since: sinceIso, modes: [] };
    for (const mode of modes) report.modes.push(await restoreMode(db, mode, sinceIso, pageSize, now, options));
    return report;
  } finally {
    db.close();
    lock?.close();
  }
}

function refuseNonEmpty(db: Database, path: string, force: boolean): void {
  const one = (sql: string) => (db.query(sql).get() as { n: number }).n;
  const events = one("SELECT COUNT(*) AS n FROM local_events");
  const snapshots = one("SELECT COUNT(*) AS n FROM local_state_snapshots");
  if (force || (events === 0 && snapshots === 0)) return;
  const looksRestored =
    one("SELECT COUNT(*) AS n FROM local_events WHERE flushed <> 1") === 0 &&
    one("SELECT COUNT(*) AS n FROM local_flush_log") === 0;
  throw new StoreNotEmptyError(path, events, snapshots, looksRestored);
}

async function restoreMode(
  db: Database,
  mode: Mode,
  sinceIso: string,
  pageSize: number,
  now: () => Date,
  options: RestoreOptions,
): Promise<ModeRestore> {
  const { source, signal } = options;
  const result: ModeRestore = {
    mode,
    read: 0,
    inserted: 0,
    present: 0,
    conflicts: [],
    remoteMaxSeq: await source.maxSeq(mode),
    localMaxSeq: 0,
    state: false,
  };
  const total = await source.count(mode, sinceIso);
  options.onProgress?.({ mode, read: 0, total });
  const insert = db.query(INSERT_SQL);
  const byId = db.query("SELECT 1 AS n FROM local_events WHERE id = ?");
  const bySeq = db.query("SELECT id FROM local_events WHERE mode = ? AND seq = ?");
  const applyPage = db.transaction((events: StoredEvent[], stamp: string) => {
    for (const e of events) {
      const changed = insert.run(
        e.id,
        e.mode,
        e.ts,
        e.seq,
        e.source,
        e.type,
        e.subtype,
        e.symbol ?? null,
        e.severity,
        e.body,
        JSON.stringify(e.meta ?? {}),
        e.idempotency_key,
        stamp,
        stamp,
      ).changes;
      if (changed === 1) result.inserted++;
      else if (byId.get(e.id)) result.present++;
      else {
        const holder = bySeq.get(e.mode, e.seq) as { id: string } | null;
        result.conflicts.push({
          id: e.id,
          seq: e.seq,
          reason: holder
            ? `seq ${e.seq} is taken by local event ${holder.id}`
            : `idempotency_key ${JSON.stringify(e.idempotency_key)} is taken by another local event`,
        });
      }
    }
  });

  // Keyset pages on seq: the next page starts at the last seq read. Old
  // projects may hold several events with one seq; those already read at that
  // seq come first again (the order is seq, then id) and are skipped, and the
  // page asks for that many more, so a run of one seq longer than a page is
  // still read through.
  let fromSeq = 1;
  let seenAtFrom = new Set<string>();
  for (;;) {
    signal?.throwIfAborted();
    const limit = pageSize + seenAtFrom.size;
    const page = await source.page(mode, sinceIso, fromSeq, limit);
    const fresh = page.filter((e) => !(e.seq === fromSeq && seenAtFrom.has(e.id)));
    if (fresh.length > 0) {
      applyPage.immediate(fresh, now().toISOString());
      result.read += fresh.length;
      options.onProgress?.({ mode, read: result.read, total });
      const last = fresh.at(-1)!.seq;
      if (last !== fromSeq) seenAtFrom = new Set();
      for (const e of fresh) if (e.seq === last) seenAtFrom.add(e.id);
      fromSeq = last;
    }
    if (page.length < limit) break;
  }

  const state = await source.latestState(mode);
  if (state) {
    const json = JSON.stringify(state.state);
    const latest = db
      .query("SELECT ts, state_json FROM local_state_snapshots WHERE mode = ? ORDER BY id DESC LIMIT 1")
      .get(mode) as { ts: string; state_json: string } | null;
    const same = latest && Date.parse(latest.ts) === Date.parse(state.ts) && latest.state_json === json;
    if (!same) {
      db.query("INSERT INTO local_state_snapshots (mode, ts, state_json) VALUES (?, ?, ?)").run(mode, state.ts, json);
      result.state = true;
    }
  }
  result.localMaxSeq = (
    db.query("SELECT COALESCE(MAX(seq), 0) AS seq FROM local_events WHERE mode = ?").get(mode) as { seq: number }
  ).seq;
  return result;
}
