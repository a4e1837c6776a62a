// The invariant every fault test checks, written once. After any sequence of
// faults and a final drain:
//   - every event acknowledged with a 2xx is in Postgres (zoe_events) exactly
//     once, with the id and seq it was acknowledged with (and in the local
//     store likewise); repeated acknowledgements of one key agree;
//   - per mode the seqs are unique and gapless within each seq range (a start
//     of the store begins a new range: local_seq_ranges), the ranges strictly
//     increasing, locally and remotely;
//   - the local database passes PRAGMA integrity_check;
//   - nothing appears twice, acknowledged or not (by key, id or body), and
//     nothing appears that the client never sent;
//   - the drain is complete: no local event is left unflushed or quarantined,
//     and Postgres holds exactly the local events.
// The comparison is a pure function (findViolations) so the checker itself
// can be tested against made-up failures.
import { Database } from "bun:sqlite";
import type { SQL } from "bun";
import type { Mode } from "../../supabase/functions/_shared/event-schema.ts";
import type { Ack, Intent, Ledger } from "./bot.ts";
import { waitFor } from "./tmp.ts";

export interface EventRow {
  id: string;
  mode: Mode;
  seq: number;
  idempotency_key: string;
  body: string;
}

export interface LocalRow extends EventRow {
  /** 0 queued, 1 flushed, 2 quarantined. */
  flushed: number;
}

export interface InvariantInput {
  intents: Map<string, Intent>;
  acks: Ack[];
  local: LocalRow[];
  /** zoe_events rows of this run (its source). */
  remote: EventRow[];
  /** PRAGMA integrity_check rows joined, "ok" when sound. */
  integrity: string;
  /** Answers the client should never have had. */
  unexpected?: string[];
  /** The first seq of each recorded range per mode (local_seq_ranges); absent: one range from 1. */
  ranges?: Record<string, number[]>;
}

export interface InvariantReport {
  acked: number;
  local: number;
  remote: number;
  perMode: Record<string, number>;
}

const MAX_LISTED = 20;

/**
 * Per mode: seqs unique, each one the successor of the one before or the
 * start of a later range (ranges strictly increasing), the first one a range
 * start. A jump that lands on no range start is a gap.
 */
function gapless(
  label: string,
  rows: EventRow[],
  ranges: Record<string, number[]> | undefined,
  violations: string[],
): void {
  const byMode = new Map<string, number[]>();
  for (const r of rows) {
    let seqs = byMode.get(r.mode);
    if (!seqs) byMode.set(r.mode, (seqs = []));
    seqs.push(r.seq);
  }
  for (const [mode, seqs] of byMode) {
    seqs.sort((a, b) => a - b);
    const starts = [...(ranges?.[mode] ?? [1])].sort((a, b) => a - b);
    for (let i = 1; i < starts.length; i++)
      if (starts[i] === starts[i - 1]) violations.push(`${label} ${mode}: range ${starts[i]} recorded twice`);
    const startSet = new Set(starts);
    const around = (i: number) => `seqs ${seqs[Math.max(0, i - 2)]}..${seqs[Math.min(seqs.length - 1, i + 2)]}`;
    for (let i = 0; i < seqs.length; i++) {
      const seq = seqs[i]!;
      if (i > 0 && seq === seqs[i - 1]) {
        violations.push(`${label} ${mode}: seq ${seq} is held twice`);
        break;
      }
      if (i > 0 && seq === seqs[i - 1]! + 1) continue;
      if (!startSet.has(seq)) {
        violations.push(
          i === 0
            ? `${label} ${mode}: seqs are not gapless: the first seq ${seq} starts no range (ranges ${starts.join(", ")})`
            : `${label} ${mode}: seqs are not gapless: ${seqs[i - 1]} is followed by ${seq}, which starts no range (${around(i)})`,
        );
        break;
      }
    }
  }
}

function unique(label: string, rows: EventRow[], field: "id" | "idempotency_key" | "body", violations: string[]): void {
  const seen = new Set<string>();
  for (const r of rows) {
    if (seen.has(r[field])) violations.push(`${label}: ${field} ${r[field]} appears twice (seq ${r.seq}, ${r.mode})`);
    seen.add(r[field]);
  }
}

/** Everything wrong with the stores after a drain, as readable lines; [] when the invariant holds. */
export function findViolations(input: InvariantInput): string[] {
  const v: string[] = [];
  if (input.integrity !== "ok") v.push(`local integrity_check: ${input.integrity}`);
  for (const u of input.unexpected ?? []) v.push(`unexpected answer: ${u}`);

  const acked = new Map<string, Ack>();
  for (const a of input.acks) {
    const first = acked.get(a.key);
    if (!first) acked.set(a.key, a);
    else if (first.id !== a.id || first.seq !== a.seq) {
      v.push(
        `ack ${a.key}: acknowledged as ${first.mode}/${first.seq} (${first.id}) and later as ${a.mode}/${a.seq} (${a.id})`,
      );
    }
  }

  for (const [label, rows] of [
    ["local", input.local],
    ["remote", input.remote],
  ] as const) {
    unique(label, rows, "idempotency_key", v);
    unique(label, rows, "id", v);
    unique(label, rows, "body", v);
    gapless(label, rows, input.ranges, v);
    for (const r of rows) {
      const intent = input.intents.get(r.idempotency_key);
      if (!intent) v.push(`${label}: seq ${r.mode}/${r.seq} has key ${r.idempotency_key}, which the client never sent`);
      else if (intent.body !== r.body || intent.mode !== r.mode)
        v.push(
          `${label}: ${r.idempotency_key} stored as ${r.mode} "${r.body.slice(0, 40)}", sent as ${intent.mode} "${intent.body.slice(0, 40)}"`,
        );
    }
  }

  const localByKey = new Map(input.local.map((r) => [r.idempotency_key, r]));
  const remoteByKey = new Map(input.remote.map((r) => [r.idempotency_key, r]));
  for (const a of acked.values()) {
    for (const [label, byKey] of [
      ["local", localByKey],
      ["remote", remoteByKey],
    ] as const) {
      const r = byKey.get(a.key);
      if (!r) v.push(`LOST: ${a.key} acknowledged as ${a.mode}/${a.seq} is not in the ${label} store`);
      else if (r.id !== a.id || r.seq !== a.seq || r.mode !== a.mode) {
        v.push(
          `${label}: ${a.key} acknowledged as ${a.mode}/${a.seq} (${a.id}) is stored as ${r.mode}/${r.seq} (${r.id})`,
        );
      }
    }
  }

  // The drain: every local event reached Postgres, nothing else did, nothing is stuck.
  for (const r of input.local) {
    if (r.flushed !== 1)
      v.push(`local: ${r.mode}/${r.seq} is ${r.flushed === 2 ? "quarantined" : "still unflushed"} after the drain`);
    const remote = remoteByKey.get(r.idempotency_key);
    if (!remote) v.push(`remote: local ${r.mode}/${r.seq} (${r.idempotency_key}) never reached Postgres`);
    else if (remote.id !== r.id || remote.seq !== r.seq || remote.mode !== r.mode) {
      v.push(
        `remote: ${r.idempotency_key} is ${remote.mode}/${remote.seq} (${remote.id}) in Postgres but ${r.mode}/${r.seq} (${r.id}) locally`,
      );
    }
  }
  for (const r of input.remote)
    if (!localByKey.has(r.idempotency_key))
      v.push(`remote: ${r.mode}/${r.seq} (${r.idempotency_key}) is not in the local store`);

  return v.length > MAX_LISTED ? [...v.slice(0, MAX_LISTED), `… and ${v.length - MAX_LISTED} more`] : v;
}

/** Reads every event row and runs PRAGMA integrity_check (the service must be stopped). */
export function readLocal(dbPath: string): {
  rows: LocalRow[];
  integrity: string;
  ranges: Record<string, number[]>;
} {
  const db = new Database(dbPath);
  try {
    const integrity = (db.query("PRAGMA integrity_check").all() as { integrity_check: string }[])
      .map((r) => r.integrity_check)
      .join("; ");
    const rows = db
      .query("SELECT id, mode, seq, idempotency_key, body, flushed FROM local_events ORDER BY mode, seq")
      .all() as LocalRow[];
    const ranges: Record<string, number[]> = {};
    for (const r of db.query("SELECT mode, start_seq FROM local_seq_ranges ORDER BY mode, start_seq").all() as {
      mode: string;
      start_seq: number;
    }[])
      (ranges[r.mode] ??= []).push(r.start_seq);
    return { rows, integrity, ranges };
  } finally {
    db.close();
  }
}

export async function readRemote(sql: SQL, source: string): Promise<EventRow[]> {
  return (
    await sql`select id::text as id, mode, seq::text as seq, idempotency_key, body from zoe_events where source = ${source} order by mode, zoe_events.seq`
  ).map((r: EventRow & { seq: string }) => ({ ...r, seq: Number(r.seq) })) as EventRow[];
}

/**
 * Checks the invariant for one run: `ledger` (what the client was told), the
 * local database at `dbPath` (service stopped) and Postgres (rows of the
 * ledger's source). Throws an Error listing every violation.
 */
export async function checkInvariant(options: { ledger: Ledger; dbPath: string; sql: SQL }): Promise<InvariantReport> {
  const { ledger } = options;
  const local = readLocal(options.dbPath);
  const remote = await readRemote(options.sql, ledger.source);
  const violations = findViolations({
    intents: ledger.intents,
    acks: ledger.acks,
    local: local.rows,
    remote,
    integrity: local.integrity,
    unexpected: ledger.unexpected,
    ranges: local.ranges,
  });
  if (violations.length > 0)
    throw new Error(`The invariant does not hold (${ledger.source}):\n  ${violations.join("\n  ")}`);
  const perMode: Record<string, number> = {};
  for (const r of remote) perMode[r.mode] = (perMode[r.mode] ?? 0) + 1;
  return { acked: ledger.acked().size, local: local.rows.length, remote: remote.length, perMode };
}

/** Waits until the service reports no backlog in any mode (GET /health). */
export async function waitForDrain(url: string, timeoutMs = 30_000): Promise<Record<string, Record<string, unknown>>> {
  return await waitFor(
    async () => {
      const res = await fetch(`${url}/health`, { signal: AbortSignal.timeout(5_000) });
      if (res.status !== 200) return null;
      const body = (await res.json()) as { modes: Record<string, Record<string, unknown>> };
      return Object.values(body.modes).every((m) => m.backlog === 0) ? body.modes : null;
    },
    timeoutMs,
    `an empty backlog at ${url}`,
  );
}
