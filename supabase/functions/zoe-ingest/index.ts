// Supabase Edge Function entry: verifies flushed batches with the shared event
// schema and writes them in one transaction. Logic in ingest.ts, SQL in writer.ts.
// A bad setting fails here, at boot, rather than on every request.
import { configFromEnv, timeoutsFromEnv } from "./config.ts";
import { createIngestHandler } from "./ingest.ts";
import { createPgWriter } from "./writer.ts";

// postgres.js 3.4.9 kills the process when Postgres closes a connection while a
// small write is queued (setImmediate → nextWrite on a null socket;
// porsager/postgres#1154 and #1208, fix unreleased). The batch's query has
// already failed with CONNECTION_CLOSED by then (answered 503, nothing
// written), so only this one error is kept from taking the function down.
globalThis.addEventListener("error", (event) => {
  const stack = String((event.error as Error | undefined)?.stack ?? "");
  if (/\bnextWrite\b/.test(stack) && /postgres\/[^/]+\/src\/connection\.js/.test(stack)) {
    event.preventDefault();
    console.error("zoe-ingest: postgres.js wrote to a closed connection (porsager/postgres#1208); still serving");
  }
});

const env = (name: string) => Deno.env.get(name);
const config = configFromEnv(env);
const dbUrl = env("SUPABASE_DB_URL");
const writer = dbUrl ? createPgWriter(dbUrl, timeoutsFromEnv(env)) : null;

Deno.serve(createIngestHandler({ config, write: writer?.write ?? null, log: (m) => console.error(m) }));
