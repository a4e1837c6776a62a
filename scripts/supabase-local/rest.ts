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
// The modules: rest-parse.ts (the query grammar), rest-sql.ts (schema cache
// and statements), rest-errors.ts (PostgREST's error answers); this file runs
// a request in its transaction and shapes the answer.
import type { SQL } from "bun";
import { fromPgError, PostgrestError } from "./rest-errors.ts";
import { parsePrefer } from "./rest-parse.ts";
import { buildInsert, buildRead, createSchemaCache, type Table } from "./rest-sql.ts";

export { PostgrestError } from "./rest-errors.ts";

export interface RestRequestContext {
  /** Role from the verified JWT (or the anon role when no JWT). */
  role: string;
  claims: Record<string, unknown>;
}

export interface RestHandlerOptions {
  sql: SQL;
  anonRole?: string;
}

const JSON_HEADERS = { "content-type": "application/json; charset=utf-8" };
const SINGULAR = "application/vnd.pgrst.object+json";

/** One transaction with the role, claims and request settings PostgREST gives it. */
async function inTransaction<T>(
  sql: SQL,
  ctx: RestRequestContext,
  req: Request,
  path: string,
  readOnly: boolean,
  fn: (tx: SQL) => Promise<T>,
): Promise<T> {
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

/** GET / HEAD: 200 with Content-Range; a singular Accept wants exactly one row (else 406 PGRST116). */
async function read(
  sql: SQL,
  t: Table,
  req: Request,
  url: URL,
  prefs: Map<string, string>,
  ctx: RestRequestContext,
): Promise<Response> {
  const singular = (req.headers.get("accept") ?? "").includes(SINGULAR);
  const q = buildRead(t, url.searchParams, prefs.get("count") === "exact");
  const { body, n, total } = await inTransaction(sql, ctx, req, url.pathname, true, async (tx) => {
    const [row] = await tx.unsafe(q.rows.text, q.rows.params);
    const total = q.count ? ((await tx.unsafe(q.count.text, q.count.params))[0].n as number) : null;
    return { body: row.body as string, n: row.n as number, total };
  });
  const range = `${n ? `${q.offset}-${q.offset + n - 1}` : "*"}/${total ?? "*"}`;
  let text = body;
  if (singular) {
    if (n !== 1) {
      throw new PostgrestError(
        406,
        "PGRST116",
        "JSON object requested, multiple (or no) rows returned",
        `The result contains ${n} rows`,
        null,
      );
    }
    text = JSON.stringify(JSON.parse(body)[0]);
  }
  const headers = {
    ...JSON_HEADERS,
    "content-range": range,
    ...(singular ? { "content-type": `${SINGULAR}; charset=utf-8` } : {}),
  };
  return new Response(req.method === "HEAD" ? null : text, { status: 200, headers });
}

// POST: 201 with Content-Range */N and Preference-Applied; the rows with return=representation.
async function insert(
  sql: SQL,
  t: Table,
  req: Request,
  url: URL,
  prefs: Map<string, string>,
  ctx: RestRequestContext,
): Promise<Response> {
  let body: unknown;
  try {
    body = JSON.parse(await req.text());
  } catch (error) {
    throw new PostgrestError(400, "PGRST102", "Empty or invalid json", (error as Error).message, null);
  }
  const q = buildInsert(t, url.searchParams, body, prefs);
  const { text, n } = await inTransaction(sql, ctx, req, url.pathname, false, async (tx) => {
    const [row] = await tx.unsafe(q.text, q.params);
    return { text: row.body as string, n: row.n as number };
  });
  const applied = [...prefs]
    .filter(([k]) => k === "resolution" || k === "missing" || k === "return" || k === "count")
    .map(([k, v]) => `${k}=${v}`);
  const headers: Record<string, string> = { "content-range": `*/${n}` };
  if (applied.length) headers["preference-applied"] = applied.join(", ");
  if (prefs.get("return") === "representation") {
    const singular = (req.headers.get("accept") ?? "").includes(SINGULAR);
    const out = singular ? JSON.stringify(JSON.parse(text)[0] ?? null) : text;
    return new Response(out, { status: 201, headers: { ...JSON_HEADERS, ...headers } });
  }
  return new Response(null, { status: 201, headers });
}

export function createRestHandler({ sql, anonRole = "anon" }: RestHandlerOptions) {
  const schema = createSchemaCache(sql);

  /** Serves /rest/v1/<tableName>; `ctx` comes from the gateway's JWT check. */
  return async function handle(req: Request, tableName: string, ctx: RestRequestContext): Promise<Response> {
    const url = new URL(req.url);
    const prefs = parsePrefer(req.headers.get("prefer"));
    try {
      for (const h of ["accept-profile", "content-profile"]) {
        const profile = req.headers.get(h);
        if (profile && profile !== "public")
          throw new PostgrestError(406, "PGRST106", "The schema must be one of the following: public", null, null);
      }
      const t = await schema.table(tableName);
      if (req.method === "GET" || req.method === "HEAD") return await read(sql, t, req, url, prefs, ctx);
      if (req.method === "POST") return await insert(sql, t, req, url, prefs, ctx);
      throw new PostgrestError(
        405,
        "PGRST117",
        `Unsupported HTTP method: ${req.method}`,
        "The local gateway implements GET, HEAD and POST only",
        null,
      );
    } catch (error) {
      const e = error instanceof PostgrestError ? error : fromPgError(error, ctx.role, anonRole);
      return new Response(JSON.stringify(e.body()), { status: e.status, headers: JSON_HEADERS });
    }
  };
}
