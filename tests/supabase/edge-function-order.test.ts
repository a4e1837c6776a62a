// zoe-ingest's ordered commits: a batch sent with after_key (the flusher has
// earlier batches of the mode in flight) commits only once the batch ending
// with that event has, so Postgres readers see a mode's rows appear in seq order.
// Real Deno behind the local gateway, a real Postgres database of its own.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import type { StoredEvent } from "../../supabase/functions/_shared/event-schema.ts";
import { remoteEvent } from "../helpers/remote-event.ts";
import { type SupabaseStack, startSupabaseStack } from "../helpers/supabase-stack.ts";
import { waitFor } from "../helpers/tmp.ts";

const ORDER_WAIT_MS = 1500;

let stack: SupabaseStack;
beforeAll(async () => {
  stack = await startSupabaseStack({ functionEnv: { ZOE_INGEST_ORDER_WAIT_MS: String(ORDER_WAIT_MS) } });
});
afterAll(async () => {
  await stack?.stop();
});

const range = (from: number, to: number, mode: "paper" | "live" = "live") =>
  Array.from({ length: to - from + 1 }, (_, i) => remoteEvent(from + i, { mode }));

async function flush(body: Record<string, unknown>) {
  const res = await fetch(stack.functionUrl, {
    method: "POST",
    headers: { "content-type": "application/json", authorization: `Bearer ${stack.serviceKey}` },
    body: JSON.stringify(body),
  });
  return {
    status: res.status,
    body: (await res.json()) as {
      accepted?: number;
      duplicates?: number;
      error?: { code: string; message: string; details: unknown };
    },
  };
}

async function storedSeqs(mode: string, from: number, to: number): Promise<number[]> {
  const rows =
    await stack.sql`select seq::int from zoe_events where mode = ${mode} and seq between ${from} and ${to} order by seq`;
  return rows.map((r: { seq: number }) => r.seq);
}

async function storedCount(events: StoredEvent[]): Promise<number> {
  const rows =
    await stack.sql`select count(*)::int as n from zoe_events where idempotency_key in ${stack.sql(events.map((e) => e.idempotency_key))}`;
  return rows[0].n;
}

/** A zoe-ingest transaction that has written its rows and is waiting for its predecessor. */
async function waitingTransaction(): Promise<boolean> {
  const rows = await stack.sql`
    select 1 from pg_stat_activity
    where datname = current_database() and application_name = 'zoe-ingest' and backend_xid is not null`;
  return rows.length > 0;
}

const lastKey = (events: StoredEvent[]) => events.at(-1)!.idempotency_key;

describe("zoe-ingest after_key", () => {
  test("a batch sent ahead of its predecessor stays invisible until the predecessor commits; then both are stored", async () => {
    const predecessor = range(1, 10);
    const successor = range(11, 20);
    const later = flush({ mode: "live", events: successor, after_key: lastKey(predecessor) });
    // Its rows are written in its open transaction, not yet visible.
    await waitFor(waitingTransaction, 10_000, "the successor's transaction");
    expect(await storedSeqs("live", 1, 20)).toEqual([]);
    const first = await flush({ mode: "live", events: predecessor });
    expect(first).toMatchObject({ status: 200, body: { accepted: 10 } });
    expect(await later).toMatchObject({ status: 200, body: { accepted: 10 } });
    expect(await storedSeqs("live", 1, 20)).toEqual(Array.from({ length: 20 }, (_, i) => i + 1));
    const [health] = await stack.sql`select last_seq::int from zoe_health where mode = 'live'`;
    expect(health.last_seq).toBe(20);
  });

  test("a batch whose predecessor has committed goes through at once", async () => {
    const before = range(21, 25);
    expect((await flush({ mode: "live", events: before })).status).toBe(200);
    expect(await flush({ mode: "live", events: range(26, 30), after_key: lastKey(before) })).toMatchObject({
      status: 200,
      body: { accepted: 5 },
    });
  });

  test("a predecessor that never commits: 409 predecessor_not_committed after the order wait, nothing written; sent again without after_key it is stored", async () => {
    const events = range(41, 50);
    const t0 = performance.now();
    const neverSent = range(31, 40);
    const refused = await flush({ mode: "live", events, after_key: lastKey(neverSent) });
    expect(performance.now() - t0).toBeGreaterThanOrEqual(ORDER_WAIT_MS - 50);
    expect(refused.status).toBe(409);
    expect(refused.body.error?.code).toBe("predecessor_not_committed");
    expect(refused.body.error?.message).toContain(lastKey(neverSent));
    expect(await storedSeqs("live", 41, 50)).toEqual([]);
    expect(await flush({ mode: "live", events })).toMatchObject({ status: 200, body: { accepted: 10 } });
    const [health] = await stack.sql`select last_seq::int from zoe_health where mode = 'live'`;
    expect(health.last_seq).toBe(50);
  });

  test("a repeat of a committed batch with after_key is answered duplicate without waiting", async () => {
    const before = range(51, 52);
    const events = range(53, 55);
    await flush({ mode: "live", events: before });
    expect((await flush({ mode: "live", events, after_key: lastKey(before) })).body.accepted).toBe(3);
    expect(await flush({ mode: "live", events, after_key: lastKey(before) })).toMatchObject({
      status: 200,
      body: { accepted: 0, duplicates: 3 },
    });
  });

  test("seqs do not decide: a batch of an older range (seqs far below zoe_health.last_seq, flushed late) still waits for its predecessor", async () => {
    expect((await flush({ mode: "live", events: range(300, 301) })).status).toBe(200);
    const predecessor = range(101, 105);
    const successor = range(106, 110);
    const later = flush({ mode: "live", events: successor, after_key: lastKey(predecessor) });
    await waitFor(waitingTransaction, 10_000, "the successor's transaction");
    expect(await storedCount(successor)).toBe(0);
    expect((await flush({ mode: "live", events: predecessor })).status).toBe(200);
    expect((await later).status).toBe(200);
    expect(await storedCount(successor)).toBe(5);
  });

  test("after_key must be an idempotency key or null", async () => {
    for (const bad of ["", "k".repeat(257), 10, true]) {
      const res = await flush({ mode: "live", events: [remoteEvent(60)], after_key: bad });
      expect(res.status).toBe(400);
      expect(res.body.error?.details).toMatchObject({
        errors: [{ path: "/after_key", message: "Expected an idempotency key (1 to 256 characters) or null" }],
      });
    }
    expect((await flush({ mode: "live", events: [remoteEvent(61)], after_key: null })).status).toBe(200);
  });
});
