// From a parsed PostgREST request to SQL over one table of `public`: the
// schema cache (columns, types, defaults, primary key, read from pg_catalog
// and reloaded when an unknown table is asked for), and the statements.
// Every value is a bind parameter cast to its column's type; identifiers are
// checked against the schema and quoted.
import type { SQL } from "bun";
import { PostgrestError } from "./rest-errors.ts";
import {
  assertNoLogicTree,
  nonNegative,
  OPERATORS,
  orderColumn,
  orderModifiers,
  parseFilter,
  parseSelectItem,
  RESERVED,
  splitList,
} from "./rest-parse.ts";

export interface Column {
  name: string;
  type: string;
  default: string | null;
}

export interface Table {
  name: string;
  columns: Map<string, Column>;
  primaryKey: string[];
}

/** A statement and its bind parameters. */
export interface Built {
  text: string;
  params: unknown[];
}

const quoteIdent = (name: string) => `"${name.replace(/"/g, '""')}"`;
const sqlString = (s: string) => `'${s.replace(/'/g, "''")}'`;

const SCHEMA_SQL = `
select c.relname as table_name, a.attname as column_name, format_type(a.atttypid, a.atttypmod) as column_type,
       pg_get_expr(d.adbin, d.adrelid) as column_default,
       coalesce((select array_position(i.indkey::int2[], a.attnum) is not null from pg_index i where i.indrelid = c.oid and i.indisprimary), false) as is_pk
from pg_class c
join pg_namespace n on n.oid = c.relnamespace
join pg_attribute a on a.attrelid = c.oid and a.attnum > 0 and not a.attisdropped
left join pg_attrdef d on d.adrelid = c.oid and d.adnum = a.attnum
where n.nspname = 'public' and c.relkind in ('r', 'v', 'm', 'p', 'f')
order by c.relname, a.attnum`;

/** Tables and views of `public`, loaded on first use. */
export function createSchemaCache(sql: SQL): { table(name: string): Promise<Table> } {
  let tables: Map<string, Table> | null = null;

  async function load(): Promise<Map<string, Table>> {
    const rows: {
      table_name: string;
      column_name: string;
      column_type: string;
      column_default: string | null;
      is_pk: boolean;
    }[] = await sql.unsafe(SCHEMA_SQL);
    const map = new Map<string, Table>();
    for (const r of rows) {
      let t = map.get(r.table_name);
      if (!t) map.set(r.table_name, (t = { name: r.table_name, columns: new Map(), primaryKey: [] }));
      t.columns.set(r.column_name, { name: r.column_name, type: r.column_type, default: r.column_default });
      if (r.is_pk) t.primaryKey.push(r.column_name);
    }
    return map;
  }

  return {
    async table(name) {
      tables ??= await load();
      let t = tables.get(name);
      if (!t) {
        // Like PostgREST's schema cache reload: a table created after start is found.
        tables = await load();
        t = tables.get(name);
      }
      if (!t)
        throw new PostgrestError(
          404,
          "PGRST205",
          `Could not find the table 'public.${name}' in the schema cache`,
          null,
          null,
        );
      return t;
    },
  };
}

function column(t: Table, name: string): Column {
  const c = t.columns.get(name);
  if (!c) throw new PostgrestError(400, "42703", `column ${t.name}.${name} does not exist`);
  return c;
}

function selectList(t: Table, select: string | null): string {
  if (select === null || select.trim() === "" || select.trim() === "*") return "*";
  return splitList(select)
    .map((raw) => {
      const item = parseSelectItem(raw, select);
      if (item === "*") return "*";
      const { alias, name, cast } = item;
      column(t, name);
      const expr = cast ? `${quoteIdent(name)}::${cast}` : quoteIdent(name);
      return alias ? `${expr} as ${quoteIdent(alias)}` : cast ? `${expr} as ${quoteIdent(name)}` : expr;
    })
    .join(", ");
}

/** The where clause of the request's filters; their values are appended to `out`. */
function where(t: Table, params: URLSearchParams, out: unknown[]): string {
  const clauses: string[] = [];
  for (const [key, raw] of params) {
    if (RESERVED.has(key)) continue;
    assertNoLogicTree(key, raw);
    const col = column(t, key);
    const filter = parseFilter(raw);
    const target = quoteIdent(col.name);
    const param = (v: string) => {
      out.push(v);
      return `$${out.length}::${col.type}`;
    };
    let clause: string;
    if (filter.op === "is") clause = `${target} is ${filter.value}`;
    else if (filter.op === "in")
      clause = filter.items.length ? `${target} in (${filter.items.map(param).join(", ")})` : "false";
    else if (filter.op === "like" || filter.op === "ilike") {
      out.push(filter.value.replace(/\*/g, "%"));
      clause = `${target}::text ${OPERATORS[filter.op]} $${out.length}`;
    } else clause = `${target} ${OPERATORS[filter.op]} ${param(filter.value)}`;
    clauses.push(filter.negate ? `not (${clause})` : clause);
  }
  return clauses.length ? ` where ${clauses.join(" and ")}` : "";
}

function orderBy(t: Table, order: string | null): string {
  if (!order) return "";
  const parts = order.split(",").map((term) => {
    const col = column(t, orderColumn(term));
    const { dir, nulls } = orderModifiers(term, order);
    return `${quoteIdent(col.name)}${dir}${nulls}`;
  });
  return ` order by ${parts.join(", ")}`;
}

/** GET: the rows as one JSON text and their count; with count=exact, the count of every match too. */
export function buildRead(
  t: Table,
  params: URLSearchParams,
  countExact: boolean,
): { rows: Built; count: Built | null; offset: number } {
  const values: unknown[] = [];
  const filter = where(t, params, values);
  const limit = nonNegative("limit", params.get("limit"));
  const offset = nonNegative("offset", params.get("offset")) ?? 0;
  const inner = `select ${selectList(t, params.get("select"))} from public.${quoteIdent(t.name)}${filter}${orderBy(t, params.get("order"))}${
    limit !== null ? ` limit ${limit}` : ""
  }${offset ? ` offset ${offset}` : ""}`;
  return {
    rows: {
      text: `select coalesce(json_agg(_t), '[]'::json)::text as body, count(*)::int as n from (${inner}) _t`,
      params: values,
    },
    count: countExact
      ? { text: `select count(*)::int as n from public.${quoteIdent(t.name)}${filter}`, params: values }
      : null,
    offset,
  };
}

/** The columns a POST writes: ?columns=, else the keys of the objects (which must all match). */
function insertColumns(t: Table, params: URLSearchParams, rows: unknown[]): Column[] {
  let names: string[];
  const columnsParam = params.get("columns");
  if (columnsParam !== null) {
    names = splitList(columnsParam);
    for (const n of names) {
      if (!t.columns.has(n))
        throw new PostgrestError(
          400,
          "PGRST204",
          `Could not find the '${n}' column of '${t.name}' in the schema cache`,
        );
    }
  } else {
    const first = Object.keys((rows[0] ?? {}) as object);
    const key = [...first].sort().join("\u0000");
    if (
      rows.some(
        (r) =>
          Object.keys(r as object)
            .sort()
            .join("\u0000") !== key,
      )
    ) {
      throw new PostgrestError(400, "PGRST102", "All object keys must match", null, null);
    }
    for (const n of first) {
      if (!t.columns.has(n))
        throw new PostgrestError(
          400,
          "PGRST204",
          `Could not find the '${n}' column of '${t.name}' in the schema cache`,
        );
    }
    names = first;
  }
  return names.map((n) => t.columns.get(n)!);
}

/** Prefer: resolution=… → the ON CONFLICT clause (target ?on_conflict= or the primary key), or "". */
function onConflict(t: Table, params: URLSearchParams, cols: Column[], resolution: string | undefined): string {
  if (resolution !== "ignore-duplicates" && resolution !== "merge-duplicates") return "";
  const target = params.get("on_conflict") ? splitList(params.get("on_conflict")!) : t.primaryKey;
  for (const n of target) column(t, n);
  if (!target.length)
    throw new PostgrestError(400, "PGRST100", `"on_conflict" needs a column list: ${t.name} has no primary key`);
  const targetSql = target.map(quoteIdent).join(", ");
  const updatable = cols.filter((c) => !target.includes(c.name));
  return resolution === "ignore-duplicates" || updatable.length === 0
    ? ` on conflict (${targetSql}) do nothing`
    : ` on conflict (${targetSql}) do update set ${updatable.map((c) => `${quoteIdent(c.name)} = excluded.${quoteIdent(c.name)}`).join(", ")}`;
}

/** POST: one statement for every row, through jsonb_to_record like PostgREST's json_to_recordset. */
export function buildInsert(
  t: Table,
  params: URLSearchParams,
  body: unknown,
  prefs: Map<string, string>,
): Built & { rowCount: number } {
  const rows = Array.isArray(body) ? body : [body];
  if (
    body === null ||
    typeof body !== "object" ||
    rows.some((r) => r === null || typeof r !== "object" || Array.isArray(r))
  ) {
    throw new PostgrestError(400, "PGRST102", "Empty or invalid json", null, null);
  }
  const cols = insertColumns(t, params, rows);
  const missingDefault = prefs.get("missing") === "default";
  const returning = prefs.get("return") === "representation" ? selectList(t, params.get("select")) : "1";
  const conflict = onConflict(t, params, cols, prefs.get("resolution"));
  if (cols.length === 0) {
    // `{}` or `[{}]`: every column takes its default.
    const text = `with _ins as (insert into public.${quoteIdent(t.name)} default values${conflict} returning ${returning}) select coalesce(json_agg(_ins), '[]'::json)::text as body, count(*)::int as n from _ins`;
    return { text, params: [], rowCount: rows.length };
  }
  const recordDef = cols.map((c) => `${quoteIdent(c.name)} ${c.type}`).join(", ");
  const exprs = cols.map((c) =>
    missingDefault
      ? `case when _e.j ? ${sqlString(c.name)} then _r.${quoteIdent(c.name)} else ${c.default ?? "null"} end`
      : `_r.${quoteIdent(c.name)}`,
  );
  const text =
    `with _ins as (insert into public.${quoteIdent(t.name)} (${cols.map((c) => quoteIdent(c.name)).join(", ")}) ` +
    `select ${exprs.join(", ")} from jsonb_array_elements($1::text::jsonb) with ordinality as _e(j, i) ` +
    `cross join lateral jsonb_to_record(_e.j) as _r(${recordDef}) order by _e.i${conflict} returning ${returning}) ` +
    `select coalesce(json_agg(_ins), '[]'::json)::text as body, count(*)::int as n from _ins`;
  return { text, params: [JSON.stringify(rows)], rowCount: rows.length };
}
