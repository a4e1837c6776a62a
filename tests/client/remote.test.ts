import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { createClient } from "@supabase/supabase-js";
import { createSupabaseReader, type RemoteReader } from "../../src/client/remote.ts";
import { type SupabaseStack, startSupabaseStack } from "../helpers/supabase-stack.ts";

// The reader against the local Supabase-compatible stack, with the anon key
// and supabase-js, exactly as the dashboard reads in REMOTE mode.
let stack: SupabaseStack;
let reader: RemoteReader;

beforeAll(async () => {
  stack = await startSupabaseStack();
  const rows = Array.from({ length: 30 }, (_, i) => ({
    id: crypto.randomUUID(),
    mode: i % 3 === 0 ? "live" : "paper",
    ts: new Date(Date.UTC(2026, 0, 5, 15, 0, i)).toISOString(),
    seq: i + 1,
    source: "bot",
    type: "ORDER",
    subtype: "TICK",
    symbol: null,
    severity: "info",
    body: `event ${i + 1}`,
    meta: { i },
    idempotency_key: `k-${i + 1}`,
  }));
  for (const r of rows) {
    await stack.sql`insert into zoe_events (id, mode, ts, seq, source, type, subtype, symbol, severity, body, meta, idempotency_key)
      values (${r.id}, ${r.mode}, ${r.ts}, ${r.seq}, ${r.source}, ${r.type}, ${r.subtype}, ${r.symbol}, ${r.severity}, ${r.body}, ${r.meta}, ${r.idempotency_key})`;
  }
  await stack.sql`insert into zoe_health (mode, last_flush_ts, last_seq, last_batch_count, backlog) values ('paper', '2026-01-05T15:01:00Z', 29, 20, 4)`;
  await stack.sql`insert into zoe_state (mode, ts, state) values ('paper', '2026-01-05T15:00:30Z', ${{ cash: 99.5, holdings: { AAPL: 2 }, positions: [], last_seq: 29 }})`;
  reader = createSupabaseReader(
    createClient(stack.url, stack.anonKey, { auth: { persistSession: false, autoRefreshToken: false } }),
  );
}, 60_000);

afterAll(async () => {
  await stack?.stop();
});

describe("createSupabaseReader()", () => {
  test("reads the newest events of one mode after a seq, newest first, limited", async () => {
    const events = await reader.events("paper", 10, 5);
    expect(events.map((e) => e.seq)).toEqual([30, 29, 27, 26, 24]);
    expect(events.every((e) => e.mode === "paper")).toBe(true);
    expect(events[0]).toMatchObject({ body: "event 30", meta: { i: 29 }, symbol: null });
    expect(await reader.events("paper", 30, 5)).toEqual([]);
  });

  test("reads the newest important events of one mode: critical subtypes and errors, however many ticks follow", async () => {
    const base = 1000;
    const rows = [
      { seq: base + 1, subtype: "BUY_FILLED", severity: "info" },
      { seq: base + 2, subtype: "TICK", severity: "error" },
      { seq: base + 3, subtype: "KILL_SWITCH", severity: "critical" },
      { seq: base + 4, subtype: "TICK", severity: "warn" },
    ];
    for (const r of rows) {
      await stack.sql`insert into zoe_events (id, mode, ts, seq, source, type, subtype, symbol, severity, body, meta, idempotency_key)
        values (${crypto.randomUUID()}, 'live', ${new Date().toISOString()}, ${r.seq}, 'bot', 'ORDER', ${r.subtype}, null, ${r.severity}, 'x', ${{}}, ${`imp-${r.seq}`})`;
    }
    const important = await reader.importantEvents!("live", 10);
    expect(important.map((e) => e.seq)).toEqual([base + 1, base + 2, base + 3]);
    expect((await reader.importantEvents!("live", 2)).map((e) => e.seq)).toEqual([base + 2, base + 3]);
    expect(await reader.importantEvents!("paper", 10)).toEqual([]);
  });

  test("reads zoe_health and zoe_state for the mode, null where nothing was flushed", async () => {
    const health = await reader.health("paper");
    expect(health).toMatchObject({ backlog: 4, lastBatchCount: 20, lastFlushStatus: "ok", source: "remote" });
    expect(Date.parse(health!.syncedAt!)).toBe(Date.parse("2026-01-05T15:01:00Z"));
    expect(await reader.state("paper")).toMatchObject({ cash: 99.5, holdings: { AAPL: 2 }, lastSeq: 29 });
    expect(await reader.health("live")).toBeNull();
    expect(await reader.state("live")).toBeNull();
  });

  test("turns a PostgREST error into a RemoteReadError naming the table", async () => {
    const bad = createSupabaseReader(
      createClient(stack.url, "not-a-jwt", { auth: { persistSession: false, autoRefreshToken: false } }),
    );
    await expect(bad.events("paper", 0, 5)).rejects.toThrow(/Cannot read zoe_events from Supabase/);
  });

  test("reports Realtime as failed where the project has none, and unsubscribes cleanly", async () => {
    const client = createClient(stack.url, stack.anonKey, { auth: { persistSession: false, autoRefreshToken: false } });
    const failed = Promise.withResolvers<string>();
    const sub = createSupabaseReader(client).subscribe!(
      "paper",
      () => {},
      (status, detail) => {
        if (status === "failed") failed.resolve(detail ?? "");
      },
    );
    expect(await failed.promise).toBeString();
    sub.unsubscribe();
    await client.removeAllChannels();
    expect(client.getChannels()).toHaveLength(0);
  });
});
