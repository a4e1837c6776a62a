// The PostgREST query grammar this gateway understands, parsed without
// knowing the table: Prefer headers, quoted lists, select items, filters
// (`col=[not.]op.value`), order terms, limit/offset. Errors are PostgREST's
// PGRST100 with its wording. Column names are checked by the caller
// (rest-sql.ts) first, as PostgREST reports an unknown column before a bad operator.
import { PostgrestError } from "./rest-errors.ts";

/** Query parameters that are not filters. */
export const RESERVED = new Set(["select", "order", "limit", "offset", "on_conflict", "columns"]);

/** The comparison operators and their SQL. */
export const OPERATORS = {
  eq: "=",
  neq: "<>",
  gt: ">",
  gte: ">=",
  lt: "<",
  lte: "<=",
  like: "like",
  ilike: "ilike",
} as const;
export type Comparison = keyof typeof OPERATORS;
const isComparison = (op: string): op is Comparison => Object.hasOwn(OPERATORS, op);

export function parsePrefer(header: string | null): Map<string, string> {
  const prefs = new Map<string, string>();
  for (const part of (header ?? "").split(",")) {
    const [k, v] = part.trim().split("=");
    if (k) prefs.set(k.trim(), (v ?? "").trim());
  }
  return prefs;
}

/** `a,b,"c,d"`: PostgREST allows double-quoted items containing commas. */
export function splitList(text: string): string[] {
  const items: string[] = [];
  const re = /\s*("((?:[^"\\]|\\.)*)"|[^,]*)\s*(,|$)/g;
  let m: RegExpExecArray | null;
  while ((m = re.exec(text)) !== null) {
    items.push(m[2] !== undefined ? m[2].replace(/\\(.)/g, "$1") : m[1]!.trim());
    if (m[3] === "" || m.index === re.lastIndex) break;
  }
  return items;
}

export interface SelectItem {
  alias: string | undefined;
  name: string;
  cast: string | undefined;
}

/** One item of `select=` (`alias:name::cast`), or "*"; `select` is the whole parameter, for the message. */
export function parseSelectItem(item: string, select: string): SelectItem | "*" {
  if (item === "*") return "*";
  const m = /^(?:([A-Za-z_][\w]*):)?([A-Za-z_][\w]*)(?:::([A-Za-z_][\w ]*))?$/.exec(item);
  if (!m)
    throw new PostgrestError(400, "PGRST100", `"failed to parse select parameter (${select})"`, `unexpected "${item}"`);
  return { alias: m[1], name: m[2]!, cast: m[3] };
}

/** Logic trees (`or=`, `and=`, `not.or=`) are refused outright. */
export function assertNoLogicTree(key: string, raw: string): void {
  if (key === "or" || key === "and" || key.startsWith("not.")) {
    throw new PostgrestError(
      400,
      "PGRST100",
      `"failed to parse logic tree (${raw})"`,
      "or/and filters are not implemented by the local gateway",
    );
  }
}

export type Filter =
  | { negate: boolean; op: Comparison; value: string }
  | { negate: boolean; op: "is"; value: "null" | "true" | "false" | "unknown" }
  | { negate: boolean; op: "in"; items: string[] };

/** A filter's value: `[not.]op.value`. */
export function parseFilter(raw: string): Filter {
  let rest = raw;
  let negate = false;
  if (rest.startsWith("not.")) {
    negate = true;
    rest = rest.slice(4);
  }
  const dot = rest.indexOf(".");
  const op = dot < 0 ? rest : rest.slice(0, dot);
  const value = dot < 0 ? "" : rest.slice(dot + 1);
  if (isComparison(op)) return { negate, op, value };
  if (op === "is") {
    const v = value.toLowerCase();
    if (v !== "null" && v !== "true" && v !== "false" && v !== "unknown") {
      throw new PostgrestError(
        400,
        "PGRST100",
        `"failed to parse filter (is.${value})"`,
        `unexpected "${value}" expecting null, true, false or unknown`,
      );
    }
    return { negate, op, value: v };
  }
  if (op === "in") {
    const m = /^\((.*)\)$/s.exec(value);
    if (!m) throw new PostgrestError(400, "PGRST100", `"failed to parse filter (in.${value})"`, `expecting "("`);
    return { negate, op, items: m[1] === "" ? [] : splitList(m[1]!) };
  }
  throw new PostgrestError(400, "PGRST100", `"failed to parse filter (${raw})"`, `unknown operator "${op}"`);
}

/** The column an order term (`name.desc.nullslast`) sorts by. */
export function orderColumn(term: string): string {
  return term.trim().split(".")[0]!;
}

/** An order term's direction and nulls placement as SQL (" desc", " nulls last"); `order` is the whole parameter, for the message. */
export function orderModifiers(term: string, order: string): { dir: string; nulls: string } {
  let dir = "";
  let nulls = "";
  for (const mod of term.trim().split(".").slice(1)) {
    if (mod === "asc" || mod === "desc") dir = ` ${mod}`;
    else if (mod === "nullsfirst") nulls = " nulls first";
    else if (mod === "nullslast") nulls = " nulls last";
    else
      throw new PostgrestError(
        400,
        "PGRST100",
        `"failed to parse order (${order})"`,
        `unexpected "${mod}" expecting "asc", "desc", "nullsfirst" or "nullslast"`,
      );
  }
  return { dir, nulls };
}

/** `limit=` / `offset=`: digits only; null when absent. */
export function nonNegative(name: string, raw: string | null): number | null {
  if (raw === null) return null;
  if (!/^\d+$/.test(raw))
    throw new PostgrestError(
      400,
      "PGRST100",
      `"failed to parse ${name} parameter (${raw})"`,
      `unexpected "${raw}" expecting digit`,
    );
  return Number(raw);
}
