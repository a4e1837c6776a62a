// A local Supabase-compatible stack: a fresh Postgres database with the
// repository's migrations, the real zoe-ingest Edge Function under Deno, and
// the gateway serving /rest/v1 and /functions/v1 — all on loopback, free ports.
import { SQL } from "bun";
import { signJwt } from "../../supabase/functions/_shared/jwt.ts";
import { ensureFunctionDependencies } from "./deno.ts";
import { type EdgeFunctionProcess, startEdgeFunction } from "./edge-function.ts";
import { startGateway } from "./gateway.ts";
import { createStackDatabase, findPostgres } from "./postgres.ts";

export const FUNCTION_NAME = "zoe-ingest";

export interface SupabaseStackOptions {
  /** Where the migrations come from (default supabase/migrations): an upgrade test starts from an older set. */
  migrationsDir?: string;
  /** Extra (or overriding) environment for the Edge Function, e.g. ZOE_FLUSH_SECRET. */
  functionEnv?: Record<string, string>;
  /** HS256 secret for the keys; a random one by default. */
  jwtSecret?: string;
  /** Gateway port; 0 (default) picks a free one. */
  port?: number;
  /** Gateway checks the function's Authorization JWT first, like the platform (default: config.toml, i.e. true). */
  functionVerifyJwt?: boolean;
}

export interface SupabaseStack {
  /** Gateway base URL: what SUPABASE_URL is for a real project. */
  url: string;
  /** JWT {role:"anon"} signed with jwtSecret. */
  anonKey: string;
  /** JWT {role:"service_role"} signed with jwtSecret. */
  serviceKey: string;
  jwtSecret: string;
  /** postgres:// URL of the stack's own database (superuser). */
  dbUrl: string;
  /** Bun SQL client connected as postgres to the stack's database. */
  sql: SQL;
  /** `${url}/functions/v1/zoe-ingest`; stays valid across restartFunction(). */
  functionUrl: string;
  /** Stops (if running) and starts the Deno process again, with the same environment. */
  restartFunction(): Promise<void>;
  /** Stops the Deno process; the gateway then answers 502 for the function. */
  stopFunction(): Promise<void>;
  /** Stops everything and drops the database. Safe to call twice. */
  stop(): Promise<void>;
  /** What the Deno process printed so far (for failing tests). */
  functionOutput(): string;
}

function randomSecret(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(32));
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

export async function startSupabaseStack(options: SupabaseStackOptions = {}): Promise<SupabaseStack> {
  // Before any database is made: a cold Deno cache is filled once per process,
  // and a registry Deno cannot use fails here with the package and the cause.
  await ensureFunctionDependencies(FUNCTION_NAME);
  const jwtSecret = options.jwtSecret ?? randomSecret();
  const [anonKey, serviceKey] = await Promise.all([
    signJwt({ iss: "supabase-local", role: "anon" }, jwtSecret),
    signJwt({ iss: "supabase-local", role: "service_role" }, jwtSecret),
  ]);
  const pg = await findPostgres();
  const cleanups: (() => Promise<void>)[] = [() => pg.stop()];
  const cleanup = async () => {
    for (const fn of cleanups.splice(0).reverse()) await fn().catch(() => {});
  };
  try {
    const db = await createStackDatabase(pg.adminUrl, options.migrationsDir);
    cleanups.push(() => db.drop());
    const sql = new SQL({ url: db.url, max: 4 });
    cleanups.push(() => sql.close());
    const gatewaySql = new SQL({ url: db.url, max: 8 });
    cleanups.push(() => gatewaySql.close());

    let fn: EdgeFunctionProcess | null = null;
    const gateway = startGateway({
      sql: gatewaySql,
      jwtSecret,
      port: options.port,
      verifyJwt: options.functionVerifyJwt,
      functionUrl: (name) => (name === FUNCTION_NAME ? (fn?.url ?? null) : undefined),
    });
    cleanups.push(() => gateway.stop());

    // What the platform injects into every Edge Function.
    const functionEnv = {
      SUPABASE_URL: gateway.url,
      SUPABASE_DB_URL: db.url,
      SUPABASE_ANON_KEY: anonKey,
      SUPABASE_SERVICE_ROLE_KEY: serviceKey,
      SUPABASE_JWT_SECRET: jwtSecret,
      ...options.functionEnv,
    };
    const stopFunction = async () => {
      const running = fn;
      fn = null;
      await running?.stop();
    };
    const startFunction = async () => {
      fn = await startEdgeFunction({ name: FUNCTION_NAME, env: functionEnv });
    };
    cleanups.push(stopFunction);
    await startFunction();

    let stopped = false;
    return {
      url: gateway.url,
      anonKey,
      serviceKey,
      jwtSecret,
      dbUrl: db.url,
      sql,
      functionUrl: `${gateway.url}/functions/v1/${FUNCTION_NAME}`,
      async restartFunction() {
        await stopFunction();
        await startFunction();
      },
      stopFunction,
      functionOutput: () => fn?.output() ?? "",
      async stop() {
        if (stopped) return;
        stopped = true;
        await cleanup();
      },
    };
  } catch (error) {
    await cleanup();
    throw error;
  }
}
