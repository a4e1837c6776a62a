// A PostgREST subset over real Postgres, for tests and demos without Docker.
//
// Implements, for tables and views of the `public` schema:
//   GET/HEAD /rest/v1/<table>?select=a,b&<col>=<op>.<value>&order=c.desc.nullslast,d&limit=N&offset=N
//     operators eq neq gt gte lt lte like ilike is in, each optionally negated with `not.`;
//     Prefer: count=exact (Content-Range 0-9/N); Accept: application/vnd.pgrst.object+json (single row, else 406 PGRST116).
//   POST /rest/v1/<table>[?columns=a,b][&on_conflict=k][&select=…] with one object or an array,
//     inserted through jsonb_to_record like PostgREST's json_to_recordset in one statement;
//     Prefer: resolution=ignore-duplicates|merge-duplicates (ON CONFLICT DO NOTHING | DO UPDATE, target on_conflict
//     or the primary key), return=minimal|representation, missing=default, count=exact.
// Each request runs in one transaction that first sets role / request.jwt.claims / request.method / request.path /
// request.headers with set_config(…, true), exactly like PostgREST, so GRANTs and RLS policies are really enforced.
// GETs run read-only. Statuses and {code,message,details,hint} bodies follow PostgREST: 201 + Content-Range */N for
// inserts, 200 for reads, 409 on 23505/23503, 401 (anon) / 403 on 42501, 404 unknown table (PGRST205),
// 400 PGRST100/102/204 and other SQL errors, 405 for verbs not implemented here (PATCH, PUT, DELETE, rpc).
// Not implemented: embedding, or/and trees, json paths, PATCH/PUT/DELETE, rpc, Range headers, other schemas.
import type { SQL } from "bun";

export interface RestRequestContext {
  /** Role from the verified JWT (or the anon role when no JWT). */
  role: string;
  claims: Record<string, unknown>;
}

interface Column {
  name: string;
  type: string;
  default: string | null;
}

interface Table {
  name: string;
  columns: Map<string, Column>;
  primaryKey: string[];
}

export class PostgrestError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly details: string | null = null,
    readonly hint: string | null = null,
  ) {
    super(message);
  }
  body() {
    return { code: this.code, details: this.details, hint: this.hint, message: this.message };
  }
}

const quoteIdent = (name: string) => `"${name.replace(/"/g, '""')}"`;

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

function pgStatus(sqlstate: string, role: string, anonRole: string): number {
  if (sqlstate === "23505" || sqlstate === "23503") return 409;
  if (sqlstate === "42501") return role === anonRole ? 401 : 403;
  if (sqlstate === "42P01") return 404;
  if (sqlstate === "42883") return 404;
  if (sqlstate === "25006") return 405;
  if (sqlstate === "P0001") return 400;
  if (/^(08|53)/.test(sqlstate)) return 503;
  if (/^54/.test(sqlstate)) return 413;
  if (/^(0L|0P|28)/.test(sqlstate)) return 403;
  if (/^(09|25|2D|38|39|3B|40|55|57|58|F0|HV|P0|XX)/.test(sqlstate)) return 500;
  return 400;
}

function fromPgError(error: unknown, role: string, anonRole: string): PostgrestError {
  const e = error as { errno?: string; code?: string; message?: string; detail?: string; hint?: string };
  const sqlstate = typeof e.errno === "string" && /^[0-9A-Z]{5}$/.test(e.errno) ? e.errno : null;
  if (!sqlstate) return new PostgrestError(503, "PGRST000", `Database connection error: ${e.message ?? String(error)}`);
  return new PostgrestError(pgStatus(sqlstate, role, anonRole), sqlstate, e.message ?? "", e.detail ?? null, e.hint ?? null);
}

function parsePrefer(header: string | null): Map<string, string> {
  const prefs = new Map<string, string>();
  for (const part of (header ?? "").split(",")) {
    const [k, v] = part.trim().split("=");
    if (k) prefs.set(k.trim(), (v ?? "").trim());
  }
  return prefs;
}

function splitList(text: string): string[] {
  // a,b,"c,d" — PostgREST allows double-quoted items containing commas.
  const items: string[] = [];
  const re = /\s*("((?:[^"\\]|\\.)*)"|[^,]*)\s*(,|$)/g;
  let m: RegExpExecArray | null;
  while ((m = re.exec(text)) !== null) {
    items.push(m[2] !== undefined ? m[2].replace(/\\(.)/g, "$1") : m[1]!.trim());
    if (m[3] === "" || m.index === re.lastIndex) break;
  }
  return items;
}

interface Built {
  text: string;
  params: unknown[];
}

const OPERATORS: Record<string, string> = { eq: "=", neq: "<>", gt: ">", gte: ">=", lt: "<", lte: "<=", like: "like", ilike: "ilike" };
const RESERVED = new Set(["select", "order", "limit", "offset", "on_conflict", "columns"]);

export interface RestHandlerOptions {
  sql: SQL;
  anonRole?: string;
}

export function createRestHandler({ sql, anonRole = "anon" }: RestHandlerOptions) {
  let tables: Map<string, Table> | null = null;

  async function loadSchema(): Promise<Map<string, Table>> {
    const rows: { table_name: string; column_name: string; column_type: string; column_default: string | null; is_pk: boolean }[] = await sql.unsafe(SCHEMA_SQL);
    const map = new Map<string, Table>();
    for (const r of rows) {
      let t = map.get(r.table_name);
      if (!t) map.set(r.table_name, (t = { name: r.table_name, columns: new Map(), primaryKey: [] }));
      t.columns.set(r.column_name, { name: r.column_name, type: r.column_type, default: r.column_default });
      if (r.is_pk) t.primaryKey.push(r.column_name);
    }
    return map;
  }

  async function table(name: string): Promise<Table> {
    tables ??= await loadSchema();
    let t = tables.get(name);
    if (!t) {
      // Like PostgREST's schema cache reload: a table created after start is found.
      tables = await loadSchema();
      t = tables.get(name);
    }
    if (!t) {
      throw new PostgrestError(404, "PGRST205", `Could not find the table 'public.${name}' in the schema cache`, null, null);
    }
    return t;
  }

  function column(t: Table, name: string): Column {
    const c = t.columns.get(name);
    if (!c) throw new PostgrestError(400, "42703", `column ${t.name}.${name} does not exist`);
    return c;
  }

  function selectList(t: Table, select: string | null): string {
    if (select === null || select.trim() === "" || select.trim() === "*") return "*";
    return splitList(select)
      .map((item) => {
        if (item === "*") return "*";
        const m = /^(?:([A-Za-z_][\w]*):)?([A-Za-z_][\w]*)(?:::([A-Za-z_][\w ]*))?$/.exec(item);
        if (!m) throw new PostgrestError(400, "PGRST100", `"failed to parse select parameter (${select})"`, `unexpected "${item}"`);
        const [, alias, name, cast] = m;
        column(t, name!);
        const expr = cast ? `${quoteIdent(name!)}::${cast}` : quoteIdent(name!);
        return alias ? `${expr} as ${quoteIdent(alias)}` : cast ? `${expr} as ${quoteIdent(name!)}` : expr;
      })
      .join(", ");
  }

  function where(t: Table, params: URLSearchParams, out: unknown[]): string {
    const clauses: string[] = [];
    for (const [key, raw] of params) {
      if (RESERVED.has(key)) continue;
      if (key === "or" || key === "and" || key.startsWith("not.")) {
        throw new PostgrestError(400, "PGRST100", `"failed to parse logic tree (${raw})"`, "or/and filters are not implemented by the local gateway");
      }
      const col = column(t, key);
      let rest = raw;
      let negate = false;
      if (rest.startsWith("not.")) {
        negate = true;
        rest = rest.slice(4);
      }
      const dot = rest.indexOf(".");
      const op = dot < 0 ? rest : rest.slice(0, dot);
      const value = dot < 0 ? "" : rest.slice(dot + 1);
      const target = quoteIdent(col.name);
      const param = (v: string) => {
        out.push(v);
        return `$${out.length}::${col.type}`;
      };
      let clause: string;
      if (op in OPERATORS) {
        if (op === "like" || op === "ilike") {
          out.push(value.replace(/\*/g, "%"));
          clause = `${target}::text ${OPERATORS[op]} $${out.length}`;
        } else clause = `${target} ${OPERATORS[op]} ${param(value)}`;
      } else if (op === "is") {
        const v = value.toLowerCase();
        if (!["null", "true", "false", "unknown"].includes(v)) {
          throw new PostgrestError(400, "PGRST100", `"failed to parse filter (is.${value})"`, `unexpected "${value}" expecting null, true, false or unknown`);
        }
        clause = `${target} is ${v}`;
      } else if (op === "in") {
        const m = /^\((.*)\)$/s.exec(value);
        if (!m) throw new PostgrestError(400, "PGRST100", `"failed to parse filter (in.${value})"`, `expecting "("`);
        const items = m[1] === "" ? [] : splitList(m[1]!);
        clause = items.length ? `${target} in (${items.map(param).join(", ")})` : "false";
      } else {
        throw new PostgrestError(400, "PGRST100", `"failed to parse filter (${raw})"`, `unknown operator "${op}"`);
      }
      clauses.push(negate ? `not (${clause})` : clause);
    }
    return clauses.length ? ` where ${clauses.join(" and ")}` : "";
  }

  function orderBy(t: Table, order: string | null): string {
    if (!order) return "";
    const parts = order.split(",").map((term) => {
      const [name, ...mods] = term.trim().split(".");
      const col = column(t, name!);
      let dir = "";
      let nulls = "";
      for (const mod of mods) {
        if (mod === "asc" || mod === "desc") dir = ` ${mod}`;
        else if (mod === "nullsfirst") nulls = " nulls first";
        else if (mod === "nullslast") nulls = " nulls last";
        else throw new PostgrestError(400, "PGRST100", `"failed to parse order (${order})"`, `unexpected "${mod}" expecting "asc", "desc", "nullsfirst" or "nullslast"`);
      }
      return `${quoteIdent(col.name)}${dir}${nulls}`;
    });
    return ` order by ${parts.join(", ")}`;
  }

  function nonNegative(name: string, raw: string | null): number | null {
    if (raw === null) return null;
    if (!/^\d+$/.test(raw)) throw new PostgrestError(400, "PGRST100", `"failed to parse ${name} parameter (${raw})"`, `unexpected "${raw}" expecting digit`);
    return Number(raw);
  }

  function buildRead(t: Table, params: URLSearchParams, countExact: boolean): { rows: Built; count: Built | null; offset: number } {
    const values: unknown[] = [];
    const filter = where(t, params, values);
    const limit = nonNegative("limit", params.get("limit"));
    const offset = nonNegative("offset", params.get("offset")) ?? 0;
    const inner = `select ${selectList(t, params.get("select"))} from public.${quoteIdent(t.name)}${filter}${orderBy(t, params.get("order"))}${
      limit !== null ? ` limit ${limit}` : ""
    }${offset ? ` offset ${offset}` : ""}`;
    return {
      rows: { text: `select coalesce(json_agg(_t), '[]'::json)::text as body, count(*)::int as n from (${inner}) _t`, params: values },
      count: countExact ? { text: `select count(*)::int as n from public.${quoteIdent(t.name)}${filter}`, params: values } : null,
      offset,
    };
  }

  function buildInsert(t: Table, params: URLSearchParams, body: unknown, prefs: Map<string, string>): Built & { rowCount: number } {
    const rows = Array.isArray(body) ? body : [body];
    if (body === null || typeof body !== "object" || rows.some((r) => r === null || typeof r !== "object" || Array.isArray(r))) {
      throw new PostgrestError(400, "PGRST102", "Empty or invalid json", null, null);
    }
    let names: string[];
    const columnsParam = params.get("columns");
    if (columnsParam !== null) {
      names = splitList(columnsParam);
      for (const n of names) {
        if (!t.columns.has(n)) throw new PostgrestError(400, "PGRST204", `Could not find the '${n}' column of '${t.name}' in the schema cache`);
      }
    } else {
      const first = Object.keys((rows[0] ?? {}) as object);
      const key = [...first].sort().join("\u0000");
      if (rows.some((r) => Object.keys(r as object).sort().join("\u0000") !== key)) {
        throw new PostgrestError(400, "PGRST102", "All object keys must match", null, null);
      }
      for (const n of first) {
        if (!t.columns.has(n)) throw new PostgrestError(400, "PGRST204", `Could not find the '${n}' column of '${t.name}' in the schema cache`);
      }
      names = first;
    }
    const missingDefault = prefs.get("missing") === "default";
    const cols = names.map((n) => t.columns.get(n)!);
    const returning = prefs.get("return") === "representation" ? selectList(t, params.get("select")) : "1";
    const resolution = prefs.get("resolution");
    let conflict = "";
    if (resolution === "ignore-duplicates" || resolution === "merge-duplicates") {
      const target = params.get("on_conflict") ? splitList(params.get("on_conflict")!) : t.primaryKey;
      for (const n of target) column(t, n);
      if (!target.length) throw new PostgrestError(400, "PGRST100", `"on_conflict" needs a column list: ${t.name} has no primary key`);
      const targetSql = target.map(quoteIdent).join(", ");
      const updatable = cols.filter((c) => !target.includes(c.name));
      conflict =
        resolution === "ignore-duplicates" || updatable.length === 0
          ? ` on conflict (${targetSql}) do nothing`
          : ` on conflict (${targetSql}) do update set ${updatable.map((c) => `${quoteIdent(c.name)} = excluded.${quoteIdent(c.name)}`).join(", ")}`;
    }
    if (cols.length === 0) {
      // `{}` or `[{}]`: every column takes its default.
      const text = `with _ins as (insert into public.${quoteIdent(t.name)} default values${conflict} returning ${returning}) select coalesce(json_agg(_ins), '[]'::json)::text as body, count(*)::int as n from _ins`;
      return { text, params: [], rowCount: rows.length };
    }
    const recordDef = cols.map((c) => `${quoteIdent(c.name)} ${c.type}`).join(", ");
    const exprs = cols.map((c) =>
      missingDefault ? `case when _e.j ? ${sqlString(c.name)} then _r.${quoteIdent(c.name)} else ${c.default ?? "null"} end` : `_r.${quoteIdent(c.name)}`
    );
    const text =
      `with _ins as (insert into public.${quoteIdent(t.name)} (${cols.map((c) => quoteIdent(c.name)).join(", ")}) ` +
      `select ${exprs.join(", ")} from jsonb_array_elements($1::text::jsonb) with ordinality as _e(j, i) ` +
      `cross join lateral jsonb_to_record(_e.j) as _r(${recordDef}) order by _e.i${conflict} returning ${returning}) ` +
      `select coalesce(json_agg(_ins), '[]'::json)::text as body, count(*)::int as n from _ins`;
    return { text, params: [JSON.stringify(rows)], rowCount: rows.length };
  }

  function sqlString(s: string): string {
    return `'${s.replace(/'/g, "''")}'`;
  }

  async function inTransaction<T>(ctx: RestRequestContext, req: Request, path: string, readOnly: boolean, fn: (tx: SQL) => Promise<T>): Promise<T> {
    const headers: Record<string, string> = {};
    req.headers.forEach((v, k) => {
      headers[k.toLowerCase()] = v;
    });
    return (await sql.begin(async (tx) => {
      if (readOnly) await tx.unsafe("set transaction read only");
      await tx`select set_config('search_path', 'public', true), set_config('role', ${ctx.role}, true),
        set_config('request.jwt.claims', ${JSON.stringify(ctx.claims)}, true), set_config('request.method', ${req.method}, true),
        set_config('request.path', ${path}, true), set_config('request.headers', ${JSON.stringify(headers)}, true)`;
      return await fn(tx as unknown as SQL);
    })) as T;
  }

  /** Serves /rest/v1/<tableName>; `ctx` comes from the gateway's JWT check. */
  return async function handle(req: Request, tableName: string, ctx: RestRequestContext): Promise<Response> {
    const url = new URL(req.url);
    const params = url.searchParams;
    const prefs = parsePrefer(req.headers.get("prefer"));
    const json = { "content-type": "application/json; charset=utf-8" };
    try {
      for (const h of ["accept-profile", "content-profile"]) {
        const profile = req.headers.get(h);
        if (profile && profile !== "public") throw new PostgrestError(406, "PGRST106", "The schema must be one of the following: public", null, null);
      }
      const t = await table(tableName);
      if (req.method === "GET" || req.method === "HEAD") {
        const singular = (req.headers.get("accept") ?? "").includes("application/vnd.pgrst.object+json");
        const q = buildRead(t, params, prefs.get("count") === "exact");
        const { body, n, total } = await inTransaction(ctx, req, url.pathname, true, async (tx) => {
          const [row] = await tx.unsafe(q.rows.text, q.rows.params);
          const total = q.count ? ((await tx.unsafe(q.count.text, q.count.params))[0].n as number) : null;
          return { body: row.body as string, n: row.n as number, total };
        });
        const range = `${n ? `${q.offset}-${q.offset + n - 1}` : "*"}/${total ?? "*"}`;
        let text = body;
        if (singular) {
          if (n !== 1) {
            throw new PostgrestError(406, "PGRST116", "JSON object requested, multiple (or no) rows returned", `The result contains ${n} rows`, null);
          }
          text = JSON.stringify(JSON.parse(body)[0]);
        }
        const headers = { ...json, "content-range": range, ...(singular ? { "content-type": "application/vnd.pgrst.object+json; charset=utf-8" } : {}) };
        return new Response(req.method === "HEAD" ? null : text, { status: 200, headers });
      }
      if (req.method === "POST") {
        let body: unknown;
        try {
          body = JSON.parse(await req.text());
        } catch (error) {
          throw new PostgrestError(400, "PGRST102", "Empty or invalid json", (error as Error).message, null);
        }
        const q = buildInsert(t, params, body, prefs);
        const { text, n } = await inTransaction(ctx, req, url.pathname, false, async (tx) => {
          const [row] = await tx.unsafe(q.text, q.params);
          return { text: row.body as string, n: row.n as number };
        });
        const applied = [...prefs].filter(([k]) => k === "resolution" || k === "missing" || k === "return" || k === "count").map(([k, v]) => `${k}=${v}`);
        const headers: Record<string, string> = { "content-range": `*/${n}` };
        if (applied.length) headers["preference-applied"] = applied.join(", ");
        if (prefs.get("return") === "representation") {
          const singular = (req.headers.get("accept") ?? "").includes("application/vnd.pgrst.object+json");
          const out = singular ? JSON.stringify(JSON.parse(text)[0] ?? null) : text;
          return new Response(out, { status: 201, headers: { ...json, ...headers } });
        }
        return new Response(null, { status: 201, headers });
      }
      throw new PostgrestError(405, "PGRST117", `Unsupported HTTP method: ${req.method}`, "The local gateway implements GET, HEAD and POST only", null);
    } catch (error) {
      const e = error instanceof PostgrestError ? error : fromPgError(error, ctx.role, anonRole);
      return new Response(JSON.stringify(e.body()), { status: e.status, headers: json });
    }
  };
}
