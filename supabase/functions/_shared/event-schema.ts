// The one event schema, shared by the Bun service and the Deno Edge Function.
// It imports nothing but @sinclair/typebox so that Supabase's bundler and
// Deno can load this very file. Formats are registered under zoe-* names so
// that Elysia's own `date-time`/`uuid` registrations can never change our
// verdicts: both runtimes run exactly the functions below.
import { FormatRegistry, type Static, type TSchema, Type } from "@sinclair/typebox";
import { TypeCompiler } from "@sinclair/typebox/compiler";
import { Value } from "@sinclair/typebox/value";

export const MODES = ["paper", "live"] as const;
export const SEVERITIES = ["debug", "info", "warn", "error", "critical"] as const;
export const MAX_BODY_BYTES = 65_536;
export const MAX_BATCH_EVENTS = 1000;

export type Mode = (typeof MODES)[number];
export type Severity = (typeof SEVERITIES)[number];

const ISO_8601 = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(\.\d{1,9})?(Z|[+-](\d{2}):(\d{2}))$/;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/**
 * ISO 8601 date-time with an explicit offset and a real calendar date, within
 * what Postgres timestamptz stores (year 0001 on, offsets up to ±15:59), so an
 * event accepted here can always reach the remote zoe_events table.
 */
export function isIsoTimestamp(value: string): boolean {
  const m = ISO_8601.exec(value);
  if (!m) return false;
  const [year, month, day, hour, minute, second] = m.slice(1, 7).map(Number) as number[];
  if (year! < 1 || month! < 1 || month! > 12 || day! < 1 || hour! > 23 || minute! > 59 || second! > 59) return false;
  const daysInMonth = new Date(Date.UTC(year!, month!, 0)).getUTCDate();
  if (day! > daysInMonth) return false;
  if (m[8] !== "Z" && (Number(m[9]) > 15 || Number(m[10]) > 59)) return false;
  return true;
}

/** Lower-case canonical UUID (any version; the service generates v7). */
export function isUuid(value: string): boolean {
  return UUID.test(value);
}

FormatRegistry.Set("zoe-iso8601", isIsoTimestamp);
FormatRegistry.Set("zoe-uuid", isUuid);

// NUL cannot be stored in Postgres text/jsonb, so it is refused at the door
// rather than poisoning the flush later.
const NO_NUL = "^[^\\u0000]*$";
const Text = (maxLength: number, description: string) =>
  Type.String({ minLength: 1, maxLength, pattern: NO_NUL, description });

export const ModeSchema = Type.Union(
  MODES.map((m) => Type.Literal(m)),
  {
    description: "Trading mode; seqs are gapless per mode.",
  },
);
export const SeveritySchema = Type.Union(SEVERITIES.map((s) => Type.Literal(s)));
export const MetaSchema = Type.Record(Type.String(), Type.Unknown(), {
  description: "Free-form JSON object, stored as meta_json.",
});

const eventFields = {
  mode: ModeSchema,
  source: Text(128, "Component that produced the event, e.g. 'bot'."),
  type: Text(128, "Event family, e.g. 'ORDER'."),
  subtype: Text(128, "Event kind, e.g. 'BUY_FILLED'."),
  body: Type.String({
    minLength: 1,
    maxLength: MAX_BODY_BYTES,
    pattern: NO_NUL,
    description: `Human-readable text, at most ${MAX_BODY_BYTES} bytes of UTF-8.`,
  }),
};

/** What a bot POSTs to /local/events. */
export const EventInputSchema = Type.Object(
  {
    ...eventFields,
    symbol: Type.Optional(Type.Union([Text(64, "Instrument symbol."), Type.Null()])),
    severity: Type.Optional(SeveritySchema),
    ts: Type.Optional(Type.String({ format: "zoe-iso8601", description: "ISO 8601 with offset; default now (UTC)." })),
    meta: Type.Optional(MetaSchema),
    idempotency_key: Type.Optional(Text(256, "Retry-safety key; default the id.")),
    id: Type.Optional(Type.String({ format: "zoe-uuid", description: "Lower-case UUID; default a UUIDv7." })),
  },
  { additionalProperties: false },
);
export type EventInput = Static<typeof EventInputSchema>;

/** A stored event as the service serves it and as the flusher ships it. */
export const StoredEventSchema = Type.Object(
  {
    ...eventFields,
    id: Type.String({ format: "zoe-uuid" }),
    // Above 2^53 JSON numbers lose precision (and Postgres bigint ends at 2^63).
    seq: Type.Integer({ minimum: 1, maximum: Number.MAX_SAFE_INTEGER }),
    ts: Type.String({ format: "zoe-iso8601" }),
    symbol: Type.Union([Text(64, "Instrument symbol."), Type.Null()]),
    severity: SeveritySchema,
    meta: MetaSchema,
    idempotency_key: Text(256, "Retry-safety key."),
  },
  { additionalProperties: false },
);
export type StoredEvent = Static<typeof StoredEventSchema>;

export interface FieldError {
  /** JSON pointer into the request body, e.g. `/2/mode`. */
  path: string;
  message: string;
}

interface Checker {
  Check(value: unknown): boolean;
  Errors(value: unknown): Iterable<{ path: string; message: string }>;
}
const compiled = new Map<TSchema, Checker>();
// TypeCompiler generates code with `new Function`; where a runtime forbids
// that, Value gives the same verdicts, only slower.
function compile(schema: TSchema): Checker {
  let c = compiled.get(schema);
  if (!c) {
    try {
      c = TypeCompiler.Compile(schema);
    } catch {
      // biome-ignore lint/correctness/noComponentHookFactories: TypeBox's Check/Errors, not React components
      c = { Check: (v) => Value.Check(schema, v), Errors: (v) => Value.Errors(schema, v) };
    }
    compiled.set(schema, c);
  }
  return c;
}

const utf8 = new TextEncoder();

/**
 * Whether JSON.stringify(v) could hold a `\u0000` or `\udXXX` escape: only
 * if some string in it (keys too) has a NUL, a backslash or a lone surrogate.
 * Walking a small meta is much cheaper than encoding it, and most have none.
 */
function mayEscape(v: unknown, depth: number): boolean {
  if (typeof v === "string") return v.includes("\0") || v.includes("\\") || !v.isWellFormed();
  if (v === null || typeof v !== "object") return false;
  if (depth > 32) return true; // deep: let the encoding decide
  if (Array.isArray(v)) return v.some((x) => mayEscape(x, depth + 1));
  for (const k in v)
    if (Object.hasOwn(v, k) && (mayEscape(k, depth + 1) || mayEscape((v as Record<string, unknown>)[k], depth + 1)))
      return true;
  return false;
}

// Checks JSON Schema cannot express: byte length, well-formed UTF-16 (a lone
// surrogate cannot be encoded as UTF-8), NUL inside meta.
function extraErrors(value: Record<string, unknown>, prefix: string): FieldError[] {
  const errors: FieldError[] = [];
  for (const key in value) {
    const v = value[key];
    if (typeof v === "string" && !v.isWellFormed()) {
      errors.push({ path: `${prefix}/${key}`, message: "Expected well-formed Unicode (lone surrogate found)" });
    }
  }
  // A UTF-16 code unit is at most 3 bytes of UTF-8: only long bodies need encoding.
  if (
    typeof value.body === "string" &&
    value.body.length * 3 > MAX_BODY_BYTES &&
    utf8.encode(value.body).length > MAX_BODY_BYTES
  ) {
    errors.push({ path: `${prefix}/body`, message: `Expected at most ${MAX_BODY_BYTES} bytes of UTF-8` });
  }
  if (value.meta !== undefined && value.meta !== null && typeof value.meta === "object" && mayEscape(value.meta, 0)) {
    const json = JSON.stringify(value.meta);
    if (json.includes("\\u0000")) errors.push({ path: `${prefix}/meta`, message: "Expected no NUL characters" });
    if (/\\ud[89a-f][0-9a-f]{2}/i.test(json)) {
      errors.push({ path: `${prefix}/meta`, message: "Expected well-formed Unicode (lone surrogate found)" });
    }
  }
  return errors;
}

// TypeBox says "Expected union value" for a bad enum; name the choices.
function friendlier(path: string, message: string): string {
  if (message !== "Expected union value") return message;
  if (path === "/mode") return `Expected one of: ${MODES.join(", ")}`;
  if (path === "/severity") return `Expected one of: ${SEVERITIES.join(", ")}`;
  return message;
}

function check(schema: TSchema, value: unknown, prefix: string): FieldError[] {
  const checker = compile(schema);
  if (!checker.Check(value)) {
    const errors: FieldError[] = [];
    for (const e of checker.Errors(value)) {
      errors.push({ path: prefix + e.path, message: friendlier(e.path, e.message) });
      if (errors.length >= 20) break;
    }
    return errors;
  }
  return extraErrors(value as Record<string, unknown>, prefix);
}

/** Validates one ingest event; `prefix` locates it in the request body. */
export function checkEventInput(value: unknown, prefix = ""): FieldError[] {
  return check(EventInputSchema, value, prefix);
}

/** Validates one stored (flushed) event. */
export function checkStoredEvent(value: unknown, prefix = ""): FieldError[] {
  return check(StoredEventSchema, value, prefix);
}
