// When is an event with a known idempotency_key a retry, and when a different
// event reusing the key? One rule for the Bun service (at ingest) and the
// Edge Function (at flush), so a key is judged the same on both sides.
//
// Compared: everything that says what happened. Not compared: `id`, `ts` and
// `seq`. A bot may stamp `ts` (or draw a new `id`) on every attempt of one
// event; `seq` is the local store's position, which is assigned again when a
// local database is restored from a backup. The stored event wins; the answer
// names it.

/** The fields that must be equal for a repeat to count as the same event. */
export const IDEMPOTENCY_FIELDS = ["mode", "source", "type", "subtype", "symbol", "severity", "body", "meta"] as const;
export type IdempotencyField = (typeof IDEMPOTENCY_FIELDS)[number];

export type ComparableEvent = Record<IdempotencyField, unknown>;

/** Equality of JSON values; object keys in any order (Postgres jsonb reorders them). */
export function jsonEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a !== "object" || typeof b !== "object" || a === null || b === null) return false;
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  if (Array.isArray(a)) {
    const other = b as unknown[];
    return a.length === other.length && a.every((v, i) => jsonEqual(v, other[i]));
  }
  const ka = Object.keys(a);
  const rb = b as Record<string, unknown>;
  return (
    ka.length === Object.keys(rb).length &&
    ka.every((k) => Object.hasOwn(rb, k) && jsonEqual((a as Record<string, unknown>)[k], rb[k]))
  );
}

/** The fields in which `candidate` differs from the `stored` event with the same key; empty for a true repeat. */
export function idempotencyDifferences(stored: ComparableEvent, candidate: ComparableEvent): IdempotencyField[] {
  return IDEMPOTENCY_FIELDS.filter((f) =>
    f === "meta" ? !jsonEqual(stored.meta, candidate.meta) : stored[f] !== candidate[f],
  );
}

/** The stored event a conflicting one is refused in favour of. */
export interface StoredEventRef {
  id: string;
  mode: string;
  seq: number;
}

/** "idempotency_key "k" is already used by event <id> (mode live, seq 41), which differs in body, meta" */
export function conflictMessage(key: string, stored: StoredEventRef, fields: readonly string[]): string {
  const shown = key.length > 80 ? `${key.slice(0, 80)}…` : key;
  return `idempotency_key ${JSON.stringify(shown)} is already used by event ${stored.id} (mode ${stored.mode}, seq ${stored.seq}), which differs in ${fields.join(", ")}`;
}
