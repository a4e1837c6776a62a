// The raw storage limit: prepared bun:sqlite inserts into a database opened
// by openStore() itself (so schema, migrations and pragmas are exactly the
// service's), with UUIDv7 ids like the service. Autocommit pays one commit per
// row; 500 per transaction shows what batching buys; :memory: shows the CPU
// cost alone. Prints one JSON line of rates (rows/s).
import { join } from "node:path";
import { openStore } from "../../src/store/store.ts";
import { childArgs, reply } from "./lib.ts";

export interface BareSqliteArgs {
  dir: string;
  autocommitRows: number;
  batchedRows: number;
}

export interface BareSqliteResult {
  autocommitPerSecond: number;
  batch500PerSecond: number;
  memoryBatch500PerSecond: number;
}

function rate(path: string, rows: number, perTransaction: number): number {
  const store = openStore({ path });
  const db = store.db;
  const insert = db.query(
    "INSERT INTO local_events (id, mode, ts, seq, source, type, subtype, symbol, severity, body, meta_json, idempotency_key, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
  );
  const meta = JSON.stringify({ order_id: "ord-1", qty: 10, limit: 187.2, strategy: "momentum-5m" });
  const t0 = performance.now();
  let seq = 0;
  while (seq < rows) {
    if (perTransaction > 1) db.run("BEGIN IMMEDIATE");
    const end = Math.min(rows, seq + perTransaction);
    const now = new Date().toISOString();
    while (seq < end) {
      seq++;
      const id = Bun.randomUUIDv7();
      insert.run(
        id,
        "paper",
        now,
        seq,
        "bot",
        "ORDER",
        "BUY_SUBMITTED",
        "AAPL",
        "info",
        `submitted buy 10 AAPL @ 187.20 limit, order ${seq}`,
        meta,
        id,
        now,
      );
    }
    if (perTransaction > 1) db.run("COMMIT");
  }
  const perSecond = (rows / (performance.now() - t0)) * 1000;
  store.close();
  return perSecond;
}

if (import.meta.main) {
  const args = childArgs<BareSqliteArgs>();
  reply({
    autocommitPerSecond: rate(join(args.dir, `bare-autocommit-${process.pid}.db`), args.autocommitRows, 1),
    batch500PerSecond: rate(join(args.dir, `bare-batch500-${process.pid}.db`), args.batchedRows, 500),
    memoryBatch500PerSecond: rate(":memory:", args.batchedRows, 500),
  } satisfies BareSqliteResult);
}
