// PostgREST's error answers: {code, message, details, hint} with the status
// PostgREST gives for the SQLSTATE (or its own PGRSTnnn code).

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

/** PostgREST's status for a Postgres SQLSTATE; a permission error is 401 for the anon role, else 403. */
export function pgStatus(sqlstate: string, role: string, anonRole: string): number {
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

/** An error from Bun's SQL client as PostgREST would answer it; no SQLSTATE means the database is unreachable. */
export function fromPgError(error: unknown, role: string, anonRole: string): PostgrestError {
  const e = error as { errno?: string; code?: string; message?: string; detail?: string; hint?: string };
  const sqlstate = typeof e.errno === "string" && /^[0-9A-Z]{5}$/.test(e.errno) ? e.errno : null;
  if (!sqlstate) return new PostgrestError(503, "PGRST000", `Database connection error: ${e.message ?? String(error)}`);
  return new PostgrestError(
    pgStatus(sqlstate, role, anonRole),
    sqlstate,
    e.message ?? "",
    e.detail ?? null,
    e.hint ?? null,
  );
}
