// The store's identity and its seq ranges. Each start of a store begins a new
// range per mode: its first seq is above everything the store holds, above
// every range it recorded before, and above a floor the opener supplies (the
// service passes the start time in ms x 1000 and, when Supabase answered at
// start, the remote's highest seq + 1: see rangeFloor). Within a range seqs
// are gapless; the next range jumps forward. A range is recorded in
// local_seq_ranges by the commit that holds its first event, so a start that
// stores nothing leaves no trace. docs/flushing.md ("Seq ranges") says why
// this never reuses a seq in Supabase and what a reader makes of a jump.
import type { Database } from "bun:sqlite";
import { MODES, type Mode } from "../../supabase/functions/_shared/event-schema.ts";

/** A range of one mode's seqs: gapless from start_seq until the next range starts. */
export interface SeqRange {
  mode: Mode;
  start_seq: number;
  started_at: string;
  store_id: string;
}

/** The current range of a mode; `recorded` turns true with the commit of its first event. */
export interface CurrentRange extends SeqRange {
  recorded: boolean;
}

/** Seq ranges per ms of time base: a store must average more than this many events per ms since its range began to reach a later start's base. */
export const SEQS_PER_MS = 1000;

/**
 * The floor of a new range at `nowMs`: the time base (nowMs x 1000, about
 * 1.8e15 in 2026, below 2^53 until the year 2255), raised to `remoteMaxSeq` + 1
 * when the remote answered at start.
 */
export function rangeFloor(nowMs: number, remoteMaxSeq?: number | null): number {
  const base = Math.floor(nowMs) * SEQS_PER_MS;
  const floor = Math.max(base, (remoteMaxSeq ?? 0) + 1, 1);
  if (!Number.isSafeInteger(floor)) throw new RangeError(`Cannot start a seq range at ${floor}: not a safe integer`);
  return floor;
}

/** The first seq of a new range: above the local max and every recorded range, and at least `floor`. */
export function nextRangeStart(localMaxSeq: number, lastRangeStart: number, floor: number): number {
  return Math.max(localMaxSeq + 1, lastRangeStart + 1, floor, 1);
}

export class SeqRanges {
  readonly storeId: string;
  readonly createdAt: string;
  /** When this start began: with the store id, it names this writer to the remote. */
  readonly startedAt: string;
  private readonly current = new Map<Mode, CurrentRange>();
  private readonly insert: ReturnType<Database["query"]>;
  private readonly listQuery: ReturnType<Database["query"]>;
  /** Modes whose range row this transaction inserted, confirmed at commit. */
  private pending: Mode[] = [];

  constructor(
    db: Database,
    options: { localMax: ReadonlyMap<Mode, number>; floor: (mode: Mode) => number; startedAt: string },
  ) {
    const row = db.query("SELECT store_id, created_at FROM local_store WHERE id = 1").get() as {
      store_id: string;
      created_at: string;
    } | null;
    if (!row) throw new Error("local_store has no row: the store was not migrated");
    this.storeId = row.store_id;
    this.createdAt = row.created_at;
    this.startedAt = options.startedAt;
    const lastStart = db.query("SELECT COALESCE(MAX(start_seq), 0) AS s FROM local_seq_ranges WHERE mode = ?");
    for (const mode of MODES) {
      const start = nextRangeStart(
        options.localMax.get(mode) ?? 0,
        (lastStart.get(mode) as { s: number }).s,
        options.floor(mode),
      );
      this.current.set(mode, {
        mode,
        start_seq: start,
        started_at: options.startedAt,
        store_id: this.storeId,
        recorded: false,
      });
    }
    this.insert = db.query(
      "INSERT OR IGNORE INTO local_seq_ranges (mode, start_seq, started_at, store_id) VALUES (?, ?, ?, ?)",
    );
    this.listQuery = db.query(
      "SELECT mode, start_seq, started_at, store_id FROM local_seq_ranges WHERE mode = ? ORDER BY start_seq DESC LIMIT ?",
    );
  }

  /** Where the writer's counter of `mode` starts: one below the range's first seq. */
  counterStart(mode: Mode): number {
    return this.current.get(mode)!.start_seq - 1;
  }

  currentRange(mode: Mode): CurrentRange {
    return { ...this.current.get(mode)! };
  }

  /** The newest `limit` recorded ranges of `mode`, newest first. */
  list(mode: Mode, limit = 20): SeqRange[] {
    return this.listQuery.all(mode, limit) as SeqRange[];
  }

  /** Inside the transaction that stores `stored`: records the range of each mode's first event of this start. */
  beforeCommit(stored: readonly { mode: Mode }[]): void {
    for (const e of stored) {
      const range = this.current.get(e.mode)!;
      if (range.recorded || this.pending.includes(e.mode)) continue;
      this.insert.run(range.mode, range.start_seq, range.started_at, range.store_id);
      this.pending.push(e.mode);
    }
  }

  /** The transaction committed: its ranges are recorded. */
  committed(): void {
    for (const mode of this.pending) this.current.get(mode)!.recorded = true;
    this.pending = [];
  }

  /** The transaction rolled back: its ranges are not recorded. */
  rolledBack(): void {
    this.pending = [];
  }
}
