import { afterAll, beforeAll, expect, test } from "bun:test";
import fc from "fast-check";
import type { EventInput } from "../../supabase/functions/_shared/event-schema.ts";
import { type EventFilter, type EventStore, openStore } from "../../src/store/store.ts";
import { RUNS, SEED, validEvent, WEIRD_STRINGS } from "../fuzz/arbitraries.ts";
import { tempDir } from "../helpers/tmp.ts";

let dir: ReturnType<typeof tempDir>;
let store: EventStore;
beforeAll(() => {
  dir = tempDir("zoe-queries-");
  store = openStore({ path: dir.file("zoe.db") });
});
afterAll(() => {
  store.close();
  dir.cleanup();
});

const asJson = (mode: "live" | "paper", after: number, limit: number) =>
  store.list(mode, { sinceSeq: after, limit }).map((e) => [e.seq, JSON.stringify(e)] as [number, string]);

test("listJson() gives every event exactly as JSON.stringify of list()'s event (the SSE replay sends it unparsed)", async () => {
  await fc.assert(
    fc.asyncProperty(fc.array(validEvent, { minLength: 1, maxLength: 8 }), async (events) => {
      const inputs = events.map((e, i) => ({
        ...(e as EventInput),
        id: undefined,
        idempotency_key: `${Math.random()}-${i}`,
      }));
      const before = { live: store.lastSeq("live"), paper: store.lastSeq("paper") };
      await store.append(inputs);
      for (const mode of ["live", "paper"] as const)
        expect(store.listJson(mode, before[mode], 100)).toEqual(asJson(mode, before[mode], 100));
    }),
    { numRuns: Math.min(RUNS, 200), seed: SEED },
  );
});

test("listJson() keeps weird strings, exotic numbers and odd meta keys byte for byte", async () => {
  const before = store.lastSeq("live");
  const meta = {
    a: 1e-7,
    b: 5e-324,
    c: 1.7976931348623157e308,
    d: -0,
    e: 123456789012345680000,
    f: [[[{}]]],
    "": null,
    ["__proto__"]: 1,
    "ключ 😀": "\u2028",
  };
  Object.defineProperty(meta, "__proto__", { value: { x: 1 }, enumerable: true });
  const inputs: EventInput[] = WEIRD_STRINGS.filter((s) => s.length > 0 && s.length < 5000).map((s) => ({
    mode: "live",
    source: "bot",
    type: "T",
    subtype: "X",
    body: `${s}\u0000\u001f"\\\n`,
    symbol: s.slice(0, 8) || null,
    meta,
  }));
  await store.append(inputs);
  const json = store.listJson("live", before, 1000);
  expect(json).toHaveLength(inputs.length);
  expect(json).toEqual(asJson("live", before, 1000));
});

test("list() with a filter gives exactly the matching events, newest `limit` or after sinceSeq, below beforeSeq", async () => {
  const f = openStore({ path: dir.file("filters.db") });
  try {
    const kinds = [
      { type: "TICK", subtype: "PRICE", severity: "debug", symbol: "AAPL" },
      { type: "TICK", subtype: "PRICE", severity: "debug", symbol: "MSFT" },
      { type: "ORDER", subtype: "BUY_FILLED", severity: "info", symbol: "AAPL" },
      { type: "ORDER", subtype: "SELL_FILLED", severity: "info", symbol: "MSFT" },
      { type: "RISK", subtype: "KILL_SWITCH", severity: "critical", symbol: null },
      { type: "SYSTEM", subtype: "FEED_LAG", severity: "warn", symbol: null },
      { type: "SYSTEM", subtype: "BROKER_DOWN", severity: "error", symbol: null },
    ] as const;
    // Two in three are ticks; the rest cycle irregularly through the other kinds.
    const inputs: EventInput[] = Array.from({ length: 400 }, (_, i) => {
      const k = kinds[i % 3 ? i % 2 : 2 + (((i / 3) * 5 + (i >> 4)) % 5)]!;
      return { mode: i % 5 === 0 ? "paper" : "live", source: "bot", body: `e${i}`, ...k };
    });
    await f.append(inputs);
    const all = f.list("live", { sinceSeq: 0, limit: 1000 });
    expect(all.length).toBeGreaterThan(300);
    const cases: { filter: EventFilter; sinceSeq?: number; beforeSeq?: number; limit: number }[] = [
      { filter: { subtypes: ["BUY_FILLED", "SELL_FILLED", "KILL_SWITCH"] }, limit: 5 },
      { filter: { subtypes: ["BUY_FILLED", "SELL_FILLED"] }, sinceSeq: 40, limit: 7 },
      { filter: { subtypes: ["BUY_FILLED", "SELL_FILLED"] }, beforeSeq: 200, limit: 3 },
      { filter: { subtypes: ["BUY_FILLED"], symbols: ["AAPL"], severities: ["info"] }, limit: 1000 },
      { filter: { severities: ["error", "critical"] }, limit: 4 },
      { filter: { severities: ["info", "warn", "error", "critical"] }, beforeSeq: 250, limit: 5 },
      { filter: { severities: ["critical"], subtypes: ["KILL_SWITCH", "BUY_FILLED"] }, limit: 1000 },
      { filter: { severities: ["warn", "error", "critical"] }, sinceSeq: 10, beforeSeq: 300, limit: 1000 },
      { filter: { severities: ["warn", "error", "critical"], types: ["SYSTEM"] }, limit: 2 },
      { filter: { symbols: ["MSFT"] }, limit: 9 },
      { filter: { types: ["ORDER", "RISK"] }, sinceSeq: 100, limit: 6 },
      { filter: { subtypes: ["NEVER_STORED"] }, limit: 10 },
      { filter: { subtypes: [] }, limit: 10 },
      { filter: { severities: ["debug", "info", "warn", "error", "critical"] }, limit: 10 },
      { filter: { subtypes: ["BUY_FILLED", "BUY_FILLED"] }, limit: 1000 },
    ];
    for (const c of cases) {
      const keep = (values: readonly (string | null)[] | undefined, v: string | null) =>
        values === undefined || values.includes(v);
      const matching = all.filter(
        (e) =>
          keep(c.filter.types, e.type) &&
          keep(c.filter.subtypes, e.subtype) &&
          keep(c.filter.symbols, e.symbol) &&
          keep(c.filter.severities, e.severity) &&
          e.seq > (c.sinceSeq ?? 0) &&
          e.seq < (c.beforeSeq ?? Number.MAX_SAFE_INTEGER),
      );
      const expected = c.sinceSeq === undefined ? matching.slice(-c.limit) : matching.slice(0, c.limit);
      if (!(c.filter.subtypes?.length === 0 || c.filter.subtypes?.[0] === "NEVER_STORED"))
        expect(expected.length).toBeGreaterThan(0);
      const got = f.list("live", c);
      expect({ ...c, seqs: got.map((e) => e.seq) }).toEqual({ ...c, seqs: expected.map((e) => e.seq) });
      expect(got).toEqual(expected);
    }
    // The paper mode's events are its own.
    expect(
      f.list("paper", { filter: { subtypes: ["BUY_FILLED"] }, limit: 1000 }).every((e) => e.mode === "paper"),
    ).toBe(true);
  } finally {
    f.close();
  }
});
