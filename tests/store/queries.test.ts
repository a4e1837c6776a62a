import { afterAll, beforeAll, expect, test } from "bun:test";
import fc from "fast-check";
import type { EventInput } from "../../supabase/functions/_shared/event-schema.ts";
import { type EventStore, openStore } from "../../src/store/store.ts";
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
