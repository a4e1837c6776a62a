// Supabase Edge Function entry: verifies flushed batches with the shared event
// schema and writes them in one transaction. Logic in ingest.ts, SQL in writer.ts.
import { configFromEnv, createIngestHandler } from "./ingest.ts";
import { createPgWriter } from "./writer.ts";

const env = (name: string) => Deno.env.get(name);
const dbUrl = env("SUPABASE_DB_URL");
const writer = dbUrl
  ? createPgWriter(dbUrl, {
    lockTimeoutMs: Number(env("ZOE_INGEST_LOCK_TIMEOUT_MS") || 5000),
    statementTimeoutMs: Number(env("ZOE_INGEST_STATEMENT_TIMEOUT_MS") || 20_000),
  })
  : null;

Deno.serve(createIngestHandler({ config: configFromEnv(env), write: writer?.write ?? null, log: (m) => console.error(m) }));
