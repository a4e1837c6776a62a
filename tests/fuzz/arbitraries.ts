// fast-check generators for hostile requests: valid events and state
// snapshots, mutants of them (dropped, retyped, unknown and prototype keys,
// weird strings, huge numbers), raw JSON texts JSON.stringify cannot produce,
// byte-level corruption, and header variants (content type, length lies,
// Authorization forms). Shared by the fuzz tests.
import fc from "fast-check";
import { checkEventInput, MODES, SEVERITIES } from "../../supabase/functions/_shared/event-schema.ts";

export const TOKEN = "fuzz-token-0123456789abcdef";

/** Runs per property: quick in `bun run test`, more with ZOE_FUZZ_RUNS. */
export const RUNS = Number(process.env.ZOE_FUZZ_RUNS ?? 300);
/** A fixed seed keeps CI reproducible; ZOE_FUZZ_SEED explores elsewhere. */
export const SEED = Number(process.env.ZOE_FUZZ_SEED ?? 20_260_501);

// A string value "@@RAW<json>@@" is spliced into the body as raw JSON text:
// how to send 1e400, -0, 2^53+1, "__proto__" keys or lone-surrogate escapes.
const raw = (json: string) => `@@RAW${json}@@`;
export function toJsonText(value: unknown): string {
  return JSON.stringify(value).replace(/"@@RAW(.*?)@@"/g, (_, text: string) => JSON.parse(`"${text}"`) as string);
}

const deep = (n: number, open: string, close: string) => `${open.repeat(n)}1${close.repeat(n)}`;
export const RAW_NASTIES = [
  "1e400",
  "-1e400",
  `1${"0".repeat(400)}`,
  "-0",
  "9007199254740993",
  "1e-400",
  "0.1e308",
  '{"__proto__":{"polluted":"yes"}}',
  '{"constructor":{"prototype":{"polluted":"yes"}}}',
  '"\\ud800"',
  '"a\\udc00b"',
  '"\\u0000"',
  '"\\\\ud800"',
  deep(70, "[", "]"),
  deep(70, '{"a":', "}"),
].map(raw);

export const WEIRD_STRINGS = [
  "",
  " ",
  "\u0000",
  "a\u0000b",
  "\ud800",
  "x\udfffy",
  "\u202eevil",
  "💥",
  "\u2028\u2029",
  "null",
  "__proto__",
  "constructor",
  "live",
  "paper",
  "LIVE",
  " live",
  "x".repeat(129),
  "€".repeat(22_000),
  "x".repeat(65_537),
  "2026-01-02T10:00:00Z",
  "2026-02-30T10:00:00Z",
  "0000-01-01T00:00:00Z",
  "2026-01-02T10:00:00+16:00",
  "0190D8A4-1B2C-7D3E-8F40-1234567890AB",
  "<script>alert(1)</script>",
  "'; DROP TABLE local_events; --",
];

const weirdString = fc.oneof(fc.string({ maxLength: 24 }), fc.string({ unit: "binary", maxLength: 24 }), {
  weight: 2,
  arbitrary: fc.constantFrom(...WEIRD_STRINGS),
});

// The known nasties weigh most: random values are rarely interesting.
export const weirdValue: fc.Arbitrary<unknown> = fc.oneof(
  { weight: 3, arbitrary: weirdString },
  { weight: 3, arbitrary: fc.constantFrom(...RAW_NASTIES) },
  fc.integer(),
  fc.double(),
  fc.boolean(),
  fc.constant(null),
  fc.array(fc.jsonValue({ maxDepth: 2 }), { maxLength: 3 }),
  fc.dictionary(fc.string({ maxLength: 8 }), fc.jsonValue({ maxDepth: 2 }), { maxKeys: 3 }),
);

const text = (maxLength: number) =>
  fc.string({ unit: "grapheme", minLength: 1, maxLength }).filter((s) => !s.includes("\u0000"));
const timestamp = fc
  .tuple(
    fc.date({ min: new Date("0001-01-01T00:00:00Z"), max: new Date("9999-12-31T23:59:59Z"), noInvalidDate: true }),
    fc.constantFrom("Z", "+00:00", "-05:00", "+15:59"),
  )
  .map(([d, offset]) => d.toISOString().replace("Z", offset));
// A small key pool: key reuse happens often. Reuse with other content is an
// idempotency_conflict (409), so the pool is drawn less than fresh keys, or
// conflicts would crowd out the accepted requests the properties need.
const idempotencyKey = fc.oneof(
  { arbitrary: fc.constantFrom("k1", "k2", "k3", "k4"), weight: 1 },
  { arbitrary: fc.string({ minLength: 1, maxLength: 12 }).filter((s) => !s.includes("\u0000")), weight: 3 },
);

/**
 * Whether JSON.stringify(value) holds an integer the service refuses as
 * inexact: beyond ±(2^53 - 1) and written in digits (from 1e21 on it is
 * written with an exponent, an ordinary double).
 */
function holdsInexactInteger(value: unknown): boolean {
  if (typeof value === "number")
    return Number.isInteger(value) && !Number.isSafeInteger(value) && Math.abs(value) < 1e21;
  if (value === null || typeof value !== "object") return false;
  return Object.values(value).some(holdsInexactInteger);
}

/** Events the schema accepts (filtered by it, and by the integer rule of the body reader, so the route must accept them too). */
export const validEvent = fc
  .record(
    {
      mode: fc.constantFrom(...MODES),
      source: text(20),
      type: text(20),
      subtype: text(20),
      body: text(60),
      symbol: fc.option(text(8), { nil: null }),
      severity: fc.constantFrom(...SEVERITIES),
      ts: timestamp,
      meta: fc.dictionary(fc.string({ maxLength: 8 }), fc.jsonValue({ maxDepth: 3 }), { maxKeys: 4 }),
      idempotency_key: idempotencyKey,
      id: fc.uuid(),
    },
    { requiredKeys: ["mode", "source", "type", "subtype", "body"] },
  )
  .filter((e) => checkEventInput(e).length === 0 && !holdsInexactInteger(e.meta));

const FIELDS = [
  "mode",
  "source",
  "type",
  "subtype",
  "body",
  "symbol",
  "severity",
  "ts",
  "meta",
  "idempotency_key",
  "id",
];
const EXTRA_KEYS = [
  "seq",
  "flushed",
  "created_at",
  "__proto__",
  "constructor",
  "prototype",
  "toString",
  "hasOwnProperty",
];
type Obj = Record<string, unknown>;
const mutation: fc.Arbitrary<(e: Obj) => Obj> = fc.oneof(
  fc.constantFrom(...FIELDS).map((k) => (e: Obj) => {
    const copy = { ...e };
    delete copy[k];
    return copy;
  }),
  // Computed keys define own properties, even "__proto__".
  fc.tuple(fc.constantFrom(...FIELDS), weirdValue).map(([k, v]) => (e: Obj) => ({ ...e, [k]: v })),
  fc
    .tuple(fc.oneof(fc.constantFrom(...EXTRA_KEYS), fc.string({ maxLength: 10 })), weirdValue)
    .map(([k, v]) => (e: Obj) => ({ ...e, [k]: v })),
  fc.tuple(fc.string({ maxLength: 8 }), weirdValue).map(([k, v]) => (e: Obj) => ({
    ...e,
    meta: { ...(e.meta as Obj), [k]: v },
  })),
);

/** A valid event with one to three mutations: usually invalid, sometimes still valid. */
export const mutantEvent = fc
  .tuple(validEvent, fc.array(mutation, { minLength: 1, maxLength: 3 }))
  .map(([e, ops]) => ops.reduce<Obj>((acc, op) => op(acc), e as Obj));

export const eventsBody: fc.Arbitrary<unknown> = fc.oneof(
  { weight: 3, arbitrary: validEvent },
  { weight: 4, arbitrary: mutantEvent },
  { weight: 3, arbitrary: fc.array(fc.oneof(validEvent, mutantEvent), { minLength: 0, maxLength: 6 }) },
  { weight: 2, arbitrary: fc.array(validEvent, { minLength: 1, maxLength: 6 }) },
  { weight: 1, arbitrary: fc.jsonValue({ maxDepth: 3 }) },
  { weight: 1, arbitrary: weirdValue },
);

export const stateBody: fc.Arbitrary<unknown> = fc.oneof(
  {
    weight: 3,
    arbitrary: fc.record({
      mode: fc.constantFrom(...MODES),
      cash: fc.double(),
      holdings: fc.jsonValue({ maxDepth: 3 }),
    }),
  },
  fc
    .tuple(
      fc.constantFrom(...MODES),
      fc.dictionary(fc.oneof(fc.string({ maxLength: 8 }), fc.constantFrom(...EXTRA_KEYS)), weirdValue, { maxKeys: 4 }),
    )
    .map(([mode, rest]) => ({ ...rest, mode })),
  fc.record({ mode: weirdValue, cash: weirdValue }),
  fc.jsonValue({ maxDepth: 3 }),
  weirdValue,
);

export type BodyEncoding = "text" | "bytes" | "chunked" | "truncated" | "corrupt";
const INVALID_UTF8 = [[0xff], [0xc3, 0x28], [0xed, 0xa0, 0x80], [0xc0, 0xaf], [0xf4, 0x90, 0x80, 0x80], [0xe2, 0x82]];

/** The wire form of a body: as text, bytes, a chunked stream, truncated, or with invalid UTF-8 spliced in. */
export const encoding = fc.record({
  kind: fc.constantFrom<BodyEncoding>("text", "text", "text", "bytes", "chunked", "truncated", "corrupt"),
  at: fc.double({ min: 0, max: 1, noNaN: true }),
  bad: fc.constantFrom(...INVALID_UTF8),
  chunk: fc.integer({ min: 1, max: 64 }),
});

export type Encoding = typeof encoding extends fc.Arbitrary<infer E> ? E : never;

export function encodeBody(value: unknown, enc: Encoding): { body: BodyInit; bytes: Uint8Array; streamed: boolean } {
  const textBody = toJsonText(value);
  let bytes = new TextEncoder().encode(textBody);
  if (enc.kind === "truncated") bytes = bytes.slice(0, Math.floor(bytes.length * enc.at));
  if (enc.kind === "corrupt") {
    const i = Math.floor(bytes.length * enc.at);
    bytes = Uint8Array.from([...bytes.slice(0, i), ...enc.bad, ...bytes.slice(i)]);
  }
  if (enc.kind === "chunked") {
    let i = 0;
    const stream = new ReadableStream<Uint8Array>({
      pull(c) {
        if (i >= bytes.length) return c.close();
        c.enqueue(bytes.slice(i, i + enc.chunk));
        i += enc.chunk;
      },
    });
    return { body: stream, bytes, streamed: true };
  }
  return { body: enc.kind === "text" ? textBody : bytes, bytes, streamed: false };
}

export const CONTENT_TYPES: (string | null)[] = [
  "application/json",
  "application/json",
  "application/json; charset=utf-8",
  "APPLICATION/JSON",
  "application/json;charset=latin1",
  null,
  "",
  "text/plain",
  "application/x-www-form-urlencoded",
  "application/jsonp",
  "application/merge-patch+json",
  "multipart/form-data; boundary=x",
  "application/json, text/plain",
];

/** What a route must accept as JSON (the rule in src/http/body.ts, written independently). */
export const isJsonType = (type: string | null) =>
  type !== null && /^application\/json(;|$)/i.test(type.trim().replace(/\s*;/, ";"));

export type LengthLie = "none" | "exact" | "smaller" | "larger" | "negative" | "garbage" | "huge";
export const contentLength = fc.constantFrom<LengthLie>(
  "none",
  "none",
  "exact",
  "smaller",
  "larger",
  "negative",
  "garbage",
  "huge",
);
export function lengthHeader(lie: LengthLie, size: number): string | null {
  switch (lie) {
    case "none":
      return null;
    case "exact":
      return String(size);
    case "smaller":
      return String(Math.max(0, size - 5));
    case "larger":
      return String(size + 10);
    case "negative":
      return "-1";
    case "garbage":
      return "12abc";
    case "huge":
      return "99999999999";
  }
}

/** Authorization variants; `valid` says whether it presents the token for a write. */
export const AUTH_VARIANTS: { header: string | null; query: boolean; valid: boolean; validRead: boolean }[] = [
  { header: `Bearer ${TOKEN}`, query: false, valid: true, validRead: true },
  { header: `bearer ${TOKEN}`, query: false, valid: true, validRead: true },
  { header: `BEARER   ${TOKEN}  `, query: false, valid: true, validRead: true },
  { header: null, query: true, valid: false, validRead: true },
  { header: null, query: false, valid: false, validRead: false },
  { header: `Bearer ${TOKEN}x`, query: false, valid: false, validRead: false },
  { header: `Bearer ${TOKEN.slice(0, -1)}`, query: false, valid: false, validRead: false },
  { header: `Bearer ${TOKEN.toUpperCase()}`, query: false, valid: false, validRead: false },
  { header: `Basic ${btoa(`user:${TOKEN}`)}`, query: false, valid: false, validRead: false },
  { header: "Bearer", query: false, valid: false, validRead: false },
  { header: `Bearer ${TOKEN} extra`, query: false, valid: false, validRead: false },
  { header: TOKEN, query: false, valid: false, validRead: false },
  // A malformed header wins over a good ?token= (no fallback to the query).
  { header: "Bearer", query: true, valid: false, validRead: false },
];
export const auth = fc.oneof(
  { weight: 3, arbitrary: fc.constantFrom(...AUTH_VARIANTS.filter((a) => a.valid)) },
  { weight: 2, arbitrary: fc.constantFrom(...AUTH_VARIANTS.filter((a) => !a.valid)) },
);

/** JSON text that keeps what JSON.stringify would hide: a non-finite number is not null. */
export function strictJson(value: unknown): string {
  return JSON.stringify(value, (_, v: unknown) => (typeof v === "number" && !Number.isFinite(v) ? `<${v}>` : v));
}
