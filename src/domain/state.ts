// The bot's state snapshot: `{mode, cash, holdings, positions, ...}`. Only
// `mode` is fixed; the rest is the bot's own JSON, kept as it was sent.
import { ValidationError } from "./errors.ts";
import { MODES, type Mode } from "../../supabase/functions/_shared/event-schema.ts";

export function checkStateInput(body: unknown): { mode: Mode; state: Record<string, unknown> } {
  if (body === null || typeof body !== "object" || Array.isArray(body)) {
    throw new ValidationError("Cannot store state snapshot: expected a JSON object", [
      { path: "", message: "Expected object" },
    ]);
  }
  const { mode, ...state } = body as Record<string, unknown>;
  if (typeof mode !== "string" || !(MODES as readonly string[]).includes(mode)) {
    throw new ValidationError("Cannot store state snapshot: invalid mode", [
      { path: "/mode", message: `Expected one of: ${MODES.join(", ")}` },
    ]);
  }
  // The same checks zoe-ingest makes on the snapshot (Postgres jsonb refuses
  // both): one it refuses would fail every flush batch it rides with.
  const json = JSON.stringify(state);
  if (json.includes("\\u0000")) {
    throw new ValidationError("Cannot store state snapshot: NUL characters are not accepted", [
      { path: "", message: "Expected no NUL characters" },
    ]);
  }
  if (/\\ud[89a-f][0-9a-f]{2}/i.test(json)) {
    throw new ValidationError("Cannot store state snapshot: lone surrogates are not accepted", [
      { path: "", message: "Expected well-formed Unicode (lone surrogate found)" },
    ]);
  }
  return { mode: mode as Mode, state };
}
