// Reads a JSON request body with the checks a public endpoint needs: content
// type, a byte limit enforced while streaming (a missing or lying
// Content-Length cannot get past it), and a clear error for malformed JSON.
import {
  IncompleteBodyError,
  MalformedJsonError,
  PayloadTooLargeError,
  UnsupportedMediaTypeError,
  ValidationError,
  ZoeError,
} from "../domain/errors.ts";

/**
 * JSON nested deeper than this is refused: walking it (our checks,
 * JSON.stringify, Postgres' jsonb) would overflow a stack. Bots' data is flat.
 */
export const MAX_JSON_DEPTH = 64;

/** Whether any container in `value` is nested `maxDepth` levels deep (no paths built: the common case). */
function deeperThan(value: unknown, maxDepth: number, depth = 0): boolean {
  if (value === null || typeof value !== "object") return false;
  if (depth >= maxDepth) return true;
  if (Array.isArray(value)) {
    for (const child of value) if (deeperThan(child, maxDepth, depth + 1)) return true;
    return false;
  }
  for (const key in value) if (deeperThan((value as Record<string, unknown>)[key], maxDepth, depth + 1)) return true;
  return false;
}

/** JSON pointer of the first container nested deeper than `maxDepth`, or null. */
export function tooDeepAt(value: unknown, maxDepth = MAX_JSON_DEPTH): string | null {
  // Recursion stays within maxDepth (64) frames; the pointer is built only for a body that is too deep.
  if (!deeperThan(value, maxDepth)) return null;
  const stack: [unknown, string, number][] = [[value, "", 0]];
  while (stack.length > 0) {
    const [v, path, depth] = stack.pop()!;
    if (v === null || typeof v !== "object") continue;
    if (depth >= maxDepth) return path;
    for (const [key, child] of Object.entries(v)) {
      stack.push([child, `${path}/${key.replaceAll("~", "~0").replaceAll("/", "~1")}`, depth + 1]);
    }
  }
  return null;
}

async function readBytes(request: Request, declared: number, maxBytes: number, what: string): Promise<Uint8Array> {
  if (!request.body) return new Uint8Array(0);
  if (Number.isInteger(declared) && declared >= 0 && !request.headers.has("transfer-encoding")) {
    // A declared length frames the body on the wire, so the server reads no
    // more than `declared` (≤ maxBytes) bytes: read it whole, without the
    // streaming reader, which costs about 10 µs per request in Bun.
    const bytes = new Uint8Array(await request.arrayBuffer());
    if (bytes.byteLength > maxBytes) {
      throw new PayloadTooLargeError(`Cannot read ${what}: body exceeds ${maxBytes} bytes`);
    }
    return bytes;
  }
  const chunks: Uint8Array[] = [];
  let size = 0;
  const reader = request.body.getReader();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > maxBytes) {
      await reader.cancel().catch(() => {});
      throw new PayloadTooLargeError(`Cannot read ${what}: body exceeds ${maxBytes} bytes`);
    }
    chunks.push(value);
  }
  return chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks);
}

// Stateless between calls (no `stream` option): one decoder serves every request.
const utf8 = new TextDecoder("utf-8", { fatal: true });

export async function readJsonBody(request: Request, maxBytes: number, what: string): Promise<unknown> {
  const type = request.headers.get("content-type") ?? "";
  if (!/^application\/json\s*(;|$)/i.test(type)) {
    throw new UnsupportedMediaTypeError(
      `Cannot read ${what}: expected Content-Type application/json, got ${type ? `"${type}"` : "none"}`,
    );
  }
  const declared = Number(request.headers.get("content-length") ?? NaN);
  if (declared > maxBytes) {
    throw new PayloadTooLargeError(`Cannot read ${what}: body of ${declared} bytes exceeds ${maxBytes} bytes`);
  }
  let bytes: Uint8Array;
  try {
    bytes = await readBytes(request, declared, maxBytes, what);
  } catch (error) {
    if (error instanceof ZoeError) throw error;
    // The client left, or stalled until Bun's idle timeout hung up: a bad
    // request, not a server fault (nobody is there to read the answer).
    throw new IncompleteBodyError(`Cannot read ${what}: the connection closed before the body was complete`, {
      cause: error,
    });
  }
  let text: string;
  try {
    text = utf8.decode(bytes);
  } catch (cause) {
    throw new MalformedJsonError(`Cannot read ${what}: body is not valid UTF-8`, { cause });
  }
  if (text.trim() === "") throw new MalformedJsonError(`Cannot read ${what}: body is empty`);
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (cause) {
    throw new MalformedJsonError(`Cannot read ${what}: malformed JSON (${(cause as Error).message})`, { cause });
  }
  const deep = tooDeepAt(value);
  if (deep !== null) {
    throw new ValidationError(`Cannot read ${what}: JSON nested more than ${MAX_JSON_DEPTH} levels deep at ${deep}`, [
      { path: deep, message: `Expected at most ${MAX_JSON_DEPTH} levels of nesting` },
    ]);
  }
  // JSON.parse turns a number beyond ±1.8e308 into Infinity, which would be
  // stored as null: refuse it rather than keep something else than was sent.
  // Only a 3-digit exponent or 210+ integer digits (with e99) can overflow, so
  // most bodies skip the walk; the text test also matches inside strings (a
  // UUID's "3e141" in most events' ids), so a walk that builds no paths comes
  // first, and the pointer is built only for a body that has such a number.
  if (/[eE]\+?\d{3}|\d{200}/.test(text) && hasNonFinite(value)) {
    const huge = nonFiniteAt(value);
    if (huge !== null) {
      throw new ValidationError(`Cannot read ${what}: number out of range at ${huge || "/"}`, [
        { path: huge, message: "Expected a number within ±1.7976931348623157e308" },
      ]);
    }
  }
  // An integer beyond 2^53 - 1 parses to the nearest double, another number
  // than was sent (9007199254740993 becomes ...992): refused like 1e400. Only
  // a run of 16 digits can be one.
  if (/\d{16}/.test(text)) {
    const inexact = inexactIntegerAt(text, value);
    if (inexact !== null) {
      throw new ValidationError(
        `Cannot read ${what}: integer ${inexact.literal} at ${inexact.path || "/"} is beyond ±9007199254740991 and would not be kept exactly; send it as a string`,
        [{ path: inexact.path, message: "Expected an integer within ±9007199254740991 (2^53 - 1), or a string" }],
      );
    }
  }
  return value;
}

const MAX_SAFE = BigInt(Number.MAX_SAFE_INTEGER);

/**
 * The first integer literal of `text` (a number without fraction or
 * exponent, outside strings) beyond ±(2^53 - 1), and the JSON pointer of
 * where it parsed to in `value`; null when there is none.
 */
export function inexactIntegerAt(text: string, value: unknown): { literal: string; path: string } | null {
  let literal: string | null = null;
  for (let i = 0; i < text.length && literal === null; i++) {
    const c = text.charCodeAt(i);
    if (c === 34 /* " */) {
      for (i++; i < text.length && text.charCodeAt(i) !== 34; i++) if (text.charCodeAt(i) === 92 /* \ */) i++;
    } else if (c === 45 /* - */ || (c >= 48 && c <= 57)) {
      const start = i;
      while (i + 1 < text.length && /[-+.eE0-9]/.test(text[i + 1]!)) i++;
      const token = text.slice(start, i + 1);
      const digits = token.replace(/^-/, "");
      if (/^\d{16,}$/.test(digits) && BigInt(digits) > MAX_SAFE) literal = token;
    }
  }
  if (literal === null) return null;
  const parsed = Number(literal);
  const stack: [unknown, string][] = [[value, ""]];
  while (stack.length > 0) {
    const [v, path] = stack.pop()!;
    if (v === parsed) return { literal, path };
    if (v === null || typeof v !== "object") continue;
    for (const [key, child] of Object.entries(v).reverse()) {
      stack.push([child, `${path}/${key.replaceAll("~", "~0").replaceAll("/", "~1")}`]);
    }
  }
  return { literal, path: "" };
}

/** Whether any number in `value` is not finite (no paths built: the common case). */
function hasNonFinite(value: unknown): boolean {
  if (typeof value === "number") return !Number.isFinite(value);
  if (value === null || typeof value !== "object") return false;
  if (Array.isArray(value)) {
    for (const child of value) if (hasNonFinite(child)) return true;
    return false;
  }
  for (const key in value) if (hasNonFinite((value as Record<string, unknown>)[key])) return true;
  return false;
}

/** JSON pointer of the first number that is not finite (1e400 parses as Infinity), or null. */
export function nonFiniteAt(value: unknown): string | null {
  const stack: [unknown, string][] = [[value, ""]];
  while (stack.length > 0) {
    const [v, path] = stack.pop()!;
    if (typeof v === "number" && !Number.isFinite(v)) return path;
    if (v === null || typeof v !== "object") continue;
    for (const [key, child] of Object.entries(v)) {
      stack.push([child, `${path}/${key.replaceAll("~", "~0").replaceAll("/", "~1")}`]);
    }
  }
  return null;
}
