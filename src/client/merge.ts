// Merging events from the local stream and from Supabase. Both sources serve
// the same events keyed by (mode, seq); the feed keeps one copy of each,
// ordered by seq, and only the newest `max`.
import { IMPORTANT_SUBTYPES, type Mode, type StoredEvent } from "./types.ts";

const important = new Set(IMPORTANT_SUBTYPES);

/** A fill, a kill switch, a halt, realised P&L, a reconciliation mismatch, or anything error or worse. */
export function isImportant(e: StoredEvent): boolean {
  return e.severity === "error" || e.severity === "critical" || important.has(e.subtype);
}

/** `a` and `b` (each ascending by seq, unique) as one ascending list, each seq once. */
export function unionBySeq(a: readonly StoredEvent[], b: readonly StoredEvent[]): StoredEvent[] {
  const out: StoredEvent[] = [];
  let i = 0;
  let j = 0;
  while (i < a.length || j < b.length) {
    const x = a[i];
    const y = b[j];
    if (y === undefined || (x !== undefined && x.seq < y.seq)) {
      out.push(x!);
      i++;
    } else if (x === undefined || y.seq < x.seq) {
      out.push(y);
      j++;
    } else {
      out.push(x);
      i++;
      j++;
    }
  }
  return out;
}

/**
 * Merges `incoming` into `current` (ascending by seq, unique) and returns the
 * newest `max`. Events of another mode are dropped; a seq already present
 * keeps its first copy. Mutates and returns `current`: the feed calls this for
 * every SSE message, so the common case (one newer event) must not copy.
 */
export function mergeEvents(
  current: StoredEvent[],
  incoming: readonly StoredEvent[],
  mode: Mode,
  max: number,
): StoredEvent[] {
  let needsSort = false;
  let seen: Set<number> | null = null;
  let newest = current.at(-1)?.seq ?? 0;
  for (const e of incoming) {
    if (e.mode !== mode || !Number.isSafeInteger(e.seq) || e.seq < 1) continue;
    if (e.seq > newest) {
      current.push(e);
      seen?.add(e.seq);
      newest = e.seq;
      continue;
    }
    if (e.seq === newest) continue;
    // Older than the newest: keep it only if it is new and would survive the cap.
    if (!needsSort && current.length >= max && e.seq < current[0]!.seq) continue;
    seen ??= new Set(current.map((c) => c.seq));
    if (seen.has(e.seq)) continue;
    seen.add(e.seq);
    current.push(e);
    needsSort = true;
  }
  if (needsSort) current.sort((a, b) => a.seq - b.seq);
  if (current.length > max) current.splice(0, current.length - max);
  return current;
}

/** Coerces a row from either source into a StoredEvent, or null if it is not one. */
export function toEvent(raw: unknown): StoredEvent | null {
  if (raw === null || typeof raw !== "object") return null;
  const r = raw as Record<string, unknown>;
  const seq = typeof r.seq === "string" ? Number(r.seq) : r.seq;
  if (typeof seq !== "number" || !Number.isSafeInteger(seq) || seq < 1) return null;
  if (r.mode !== "paper" && r.mode !== "live") return null;
  let meta = r.meta ?? r.meta_json ?? {};
  if (typeof meta === "string") {
    try {
      meta = JSON.parse(meta);
    } catch {
      meta = {};
    }
  }
  return {
    id: String(r.id ?? ""),
    mode: r.mode,
    seq,
    ts: String(r.ts ?? ""),
    source: String(r.source ?? ""),
    type: String(r.type ?? ""),
    subtype: String(r.subtype ?? ""),
    symbol: typeof r.symbol === "string" ? r.symbol : null,
    severity: (["debug", "info", "warn", "error", "critical"].includes(r.severity as string)
      ? r.severity
      : "info") as StoredEvent["severity"],
    body: String(r.body ?? ""),
    meta: meta !== null && typeof meta === "object" ? (meta as Record<string, unknown>) : {},
    idempotency_key: typeof r.idempotency_key === "string" ? r.idempotency_key : undefined,
  };
}
