// `bun run supabase:local`: starts a local Supabase-compatible stack for demos
// and prints the variables to export. Ctrl-C stops it and drops its database.
// The keys are signed with ZOE_LOCAL_JWT_SECRET (default: a fixed demo secret,
// so keys stay the same across restarts); the port is PORT (default 54321, like the CLI).
import { startSupabaseStack } from "./supabase-local/stack.ts";

const DEMO_SECRET = "zoe-local-demo-jwt-secret-not-for-production-use";
const stack = await startSupabaseStack({
  jwtSecret: process.env.ZOE_LOCAL_JWT_SECRET || DEMO_SECRET,
  port: Number(process.env.PORT ?? 54321),
});
console.log(`Local Supabase-compatible stack is up (database ${new URL(stack.dbUrl).pathname.slice(1)}).

export SUPABASE_URL=${stack.url}
export SUPABASE_ANON_KEY=${stack.anonKey}
export SUPABASE_SERVICE_ROLE_KEY=${stack.serviceKey}
export SUPABASE_DB_URL=${stack.dbUrl}

Edge Function: POST ${stack.functionUrl}
REST:          ${stack.url}/rest/v1/zoe_events?select=*&order=seq.desc&limit=10
Ctrl-C to stop.`);

let stopping = false;
for (const signal of ["SIGINT", "SIGTERM"] as const) {
  process.on(signal, async () => {
    if (stopping) return;
    stopping = true;
    await stack.stop();
    process.exit(0);
  });
}
