// Supabase Edge Function entry: verifies flushed batches with the shared event
// schema and writes them in one transaction. Logic in ingest.ts, SQL in writer.ts.
// A bad setting fails here, at boot, rather than on every request.
import { configFromEnv, createIngestHandler, timeoutsFromEnv } from "./ingest.ts";
import { createPgWriter } from "./writer.ts";

const env = (name: string) => Deno.env.get(name);
const config = configFromEnv(env);
const dbUrl = env("SUPABASE_DB_URL");
const writer = dbUrl ? createPgWriter(dbUrl, timeoutsFromEnv(env)) : null;

Deno.serve(createIngestHandler({ config, write: writer?.write ?? null, log: (m) => console.error(m) }));
