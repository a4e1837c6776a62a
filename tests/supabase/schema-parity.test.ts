// The shared event schema must give the same verdicts in the Bun service and
// in the Deno Edge Function. One corpus of good and bad events goes through
// checkStoredEvent/checkEventInput here (with Elysia loaded, as in the
// service) and in a real Deno process; verdicts and error paths must match.
import { describe, expect, test } from "bun:test";
import { join } from "node:path";
// Loads Elysia and everything the service registers with TypeBox first.
import "../../src/http/app.ts";
import { checkEventInput, checkStoredEvent, MAX_BODY_BYTES } from "../../supabase/functions/_shared/event-schema.ts";
import { denoBinary, denoEnv, ensureFunctionDependencies } from "../../scripts/supabase-local/deno.ts";

const ROOT = join(import.meta.dir, "..", "..");
const DENO_CONFIG = join(ROOT, "supabase", "functions", "zoe-ingest", "deno.json");

const base = {
  id: "0190a6f0-1234-7abc-8def-0123456789ab",
  mode: "live",
  seq: 42,
  ts: "2026-03-09T14:30:00.123Z",
  source: "bot",
  type: "ORDER",
  subtype: "BUY_FILLED",
  symbol: "AAPL",
  severity: "info",
  body: "Bought 10 AAPL @ 187.20",
  meta: { qty: 10, price: 187.2, tags: ["a", "b"], nested: { ok: true } },
  idempotency_key: "order-1-fill",
};
const without = (key: keyof typeof base) => Object.fromEntries(Object.entries(base).filter(([k]) => k !== key));
const ev = (patch: Record<string, unknown>) => ({ ...base, ...patch });

// [name, value, expected verdict of checkStoredEvent]
const corpus: [string, unknown, "valid" | "invalid"][] = [
  ["baseline", base, "valid"],
  ["symbol null", ev({ symbol: null }), "valid"],
  ...(["debug", "info", "warn", "error", "critical"].map((s) => [`severity ${s}`, ev({ severity: s }), "valid"]) as [
    string,
    unknown,
    "valid",
  ][]),
  ["paper mode", ev({ mode: "paper" }), "valid"],
  ["leap day 2024", ev({ ts: "2024-02-29T00:00:00Z" }), "valid"],
  ["leap day 2000", ev({ ts: "2000-02-29T12:00:00Z" }), "valid"],
  ["offset +05:30", ev({ ts: "2026-03-09T14:30:00+05:30" }), "valid"],
  ["offset -15:59", ev({ ts: "2026-03-09T14:30:00-15:59" }), "valid"],
  ["offset +15:59", ev({ ts: "2026-03-09T14:30:00+15:59" }), "valid"],
  ["nanoseconds", ev({ ts: "2026-03-09T14:30:00.123456789Z" }), "valid"],
  ["year 0001", ev({ ts: "0001-01-01T00:00:00Z" }), "valid"],
  ["year 9999 end", ev({ ts: "9999-12-31T23:59:59.999999999Z" }), "valid"],
  ["DST gap wall time", ev({ ts: "2026-03-08T02:30:00-05:00" }), "valid"],
  ["empty meta", ev({ meta: {} }), "valid"],
  ["deep meta", ev({ meta: { a: { b: { c: { d: [1, 2, { e: null }] } } } } }), "valid"],
  ["unicode body", ev({ body: "Kauf 10 × ÄÖÜ 📈 — 株" }), "valid"],
  ["emoji pair in meta", ev({ meta: { e: "😀" } }), "valid"],
  ["body at byte limit", ev({ body: "x".repeat(MAX_BODY_BYTES) }), "valid"],
  ["key of 256", ev({ idempotency_key: "k".repeat(256) }), "valid"],
  ["symbol of 64", ev({ symbol: "S".repeat(64) }), "valid"],
  ["seq max safe", ev({ seq: Number.MAX_SAFE_INTEGER }), "valid"],
  ["uuid v4", ev({ id: "3f2504e0-4f89-41d3-9a0c-0305e82c3301" }), "valid"],
  ["not leap 2023", ev({ ts: "2023-02-29T00:00:00Z" }), "invalid"],
  ["not leap 1900", ev({ ts: "1900-02-29T00:00:00Z" }), "invalid"],
  ["not leap 2100", ev({ ts: "2100-02-29T00:00:00Z" }), "invalid"],
  ["april 31", ev({ ts: "2026-04-31T00:00:00Z" }), "invalid"],
  ["month 13", ev({ ts: "2026-13-01T00:00:00Z" }), "invalid"],
  ["month 00", ev({ ts: "2026-00-10T00:00:00Z" }), "invalid"],
  ["day 00", ev({ ts: "2026-01-00T00:00:00Z" }), "invalid"],
  ["hour 24", ev({ ts: "2026-01-01T24:00:00Z" }), "invalid"],
  ["leap second", ev({ ts: "2016-12-31T23:59:60Z" }), "invalid"],
  ["offset +16:00", ev({ ts: "2026-01-01T00:00:00+16:00" }), "invalid"],
  ["offset +24:00", ev({ ts: "2026-01-01T00:00:00+24:00" }), "invalid"],
  ["offset minutes 60", ev({ ts: "2026-01-01T00:00:00+01:60" }), "invalid"],
  ["offset without colon", ev({ ts: "2026-01-01T00:00:00+0100" }), "invalid"],
  ["year 0000", ev({ ts: "0000-01-01T00:00:00Z" }), "invalid"],
  ["no offset", ev({ ts: "2026-01-01T00:00:00" }), "invalid"],
  ["space separator", ev({ ts: "2026-01-01 00:00:00Z" }), "invalid"],
  ["lower-case t and z", ev({ ts: "2026-01-01t00:00:00z" }), "invalid"],
  ["date only", ev({ ts: "2026-01-01" }), "invalid"],
  ["10 fraction digits", ev({ ts: "2026-01-01T00:00:00.1234567890Z" }), "invalid"],
  ["epoch number ts", ev({ ts: 1767225600000 }), "invalid"],
  ["upper-case uuid", ev({ id: base.id.toUpperCase() }), "invalid"],
  ["uuid without dashes", ev({ id: base.id.replace(/-/g, "") }), "invalid"],
  ["uuid in braces", ev({ id: `{${base.id}}` }), "invalid"],
  ["uuid too short", ev({ id: base.id.slice(0, 35) }), "invalid"],
  ["uuid with g", ev({ id: `g${base.id.slice(1)}` }), "invalid"],
  ["seq 0", ev({ seq: 0 }), "invalid"],
  ["seq negative", ev({ seq: -1 }), "invalid"],
  ["seq fraction", ev({ seq: 1.5 }), "invalid"],
  ["seq string", ev({ seq: "1" }), "invalid"],
  ["seq above max safe", ev({ seq: Number.MAX_SAFE_INTEGER + 1 }), "invalid"],
  ["seq 1e300", ev({ seq: 1e300 }), "invalid"],
  ["mode upper-case", ev({ mode: "LIVE" }), "invalid"],
  ["mode unknown", ev({ mode: "test" }), "invalid"],
  ["severity unknown", ev({ severity: "fatal" }), "invalid"],
  ["unknown field", ev({ extra: 1 }), "invalid"],
  ["unknown field named __proto__", JSON.parse(`{"__proto__": {"x": 1}, ${JSON.stringify(base).slice(1)}`), "invalid"],
  ["flushed flag leaked", ev({ flushed: 0 }), "invalid"],
  ...(Object.keys(base).map((k) => [`missing ${k}`, without(k as keyof typeof base), "invalid"]) as [
    string,
    unknown,
    "invalid",
  ][]),
  ["body null", ev({ body: null }), "invalid"],
  ["body empty", ev({ body: "" }), "invalid"],
  ["source empty", ev({ source: "" }), "invalid"],
  ["source 129", ev({ source: "s".repeat(129) }), "invalid"],
  ["symbol 65", ev({ symbol: "S".repeat(65) }), "invalid"],
  ["key 257", ev({ idempotency_key: "k".repeat(257) }), "invalid"],
  ["NUL in body", ev({ body: "a\u0000b" }), "invalid"],
  ["NUL in source", ev({ source: "bot\u0000" }), "invalid"],
  ["NUL in symbol", ev({ symbol: "\u0000" }), "invalid"],
  ["NUL in meta value", ev({ meta: { a: "x\u0000" } }), "invalid"],
  ["NUL in meta key", ev({ meta: { "k\u0000": 1 } }), "invalid"],
  ["lone high surrogate in body", ev({ body: "a\ud800b" }), "invalid"],
  ["lone low surrogate in subtype", ev({ subtype: "\udc00" }), "invalid"],
  ["lone surrogate in meta", ev({ meta: { a: ["\ud83d"] } }), "invalid"],
  ["lone surrogate in meta key", ev({ meta: { "\udfff": 1 } }), "invalid"],
  ["body one byte over", ev({ body: "x".repeat(MAX_BODY_BYTES + 1) }), "invalid"],
  ["body over in UTF-8 only", ev({ body: "€".repeat(30_000) }), "invalid"],
  ["meta array", ev({ meta: [1, 2] }), "invalid"],
  ["meta null", ev({ meta: null }), "invalid"],
  ["meta string", ev({ meta: "{}" }), "invalid"],
  ["array", [base], "invalid"],
  ["string", "event", "invalid"],
  ["null", null, "invalid"],
  ["number", 42, "invalid"],
  ["empty object", {}, "invalid"],
  [
    "everything wrong",
    {
      id: 1,
      mode: 2,
      seq: "x",
      ts: 3,
      source: 4,
      type: 5,
      subtype: 6,
      symbol: 7,
      severity: 8,
      body: 9,
      meta: 10,
      idempotency_key: 11,
      a: 1,
      b: 2,
    },
    "invalid",
  ],
];

async function denoVerdicts(values: unknown[]): Promise<{ stored: unknown[]; input: unknown[] }[]> {
  // The fixture imports the same npm packages as the function: fetched (or refused, clearly) once.
  await ensureFunctionDependencies("zoe-ingest");
  const proc = Bun.spawn(
    [
      denoBinary(),
      "run",
      "--no-prompt",
      "--frozen",
      `--config=${DENO_CONFIG}`,
      join(import.meta.dir, "..", "fixtures", "schema-verdicts.deno.ts"),
    ],
    {
      stdin: new TextEncoder().encode(JSON.stringify(values)),
      stdout: "pipe",
      stderr: "pipe",
      env: denoEnv(),
    },
  );
  const [out, err, code] = await Promise.all([
    new Response(proc.stdout).text(),
    new Response(proc.stderr).text(),
    proc.exited,
  ]);
  if (code !== 0) throw new Error(`deno exited ${code}: ${err}`);
  return JSON.parse(out);
}

describe("shared event schema", () => {
  test("corpus verdicts are what the schema promises, in Bun", () => {
    const wrong = corpus
      .filter(([, value, want]) => (checkStoredEvent(value).length === 0 ? "valid" : "invalid") !== want)
      .map(([name]) => name);
    expect(wrong).toEqual([]);
  });

  test("Bun and Deno give identical verdicts and error paths for the whole corpus", async () => {
    // The wire carries JSON, so both runtimes judge the JSON round trip of each value.
    const values = corpus.map(([, v]) => JSON.parse(JSON.stringify(v)));
    const deno = await denoVerdicts(values);
    const bun = values.map((v) => ({ stored: checkStoredEvent(v), input: checkEventInput(v) }));
    expect(deno.length).toBe(corpus.length);
    const mismatches = corpus.flatMap(([name], i) =>
      Bun.deepEquals(bun[i], deno[i]) ? [] : [{ name, bun: bun[i], deno: deno[i] }],
    );
    expect(mismatches).toEqual([]);
    // Sanity: the comparison is not vacuous.
    expect(bun.filter((v) => v.stored.length > 0).length).toBeGreaterThan(50);
  });
});
