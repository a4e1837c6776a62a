// Local Supabase-compatible stack for tests: fresh Postgres database with the
// migrations applied, the real zoe-ingest Edge Function under Deno, and a
// PostgREST-subset gateway. See scripts/supabase-local/ for what each part implements.
export { startSupabaseStack, FUNCTION_NAME } from "../../scripts/supabase-local/stack.ts";
export type { SupabaseStack, SupabaseStackOptions } from "../../scripts/supabase-local/stack.ts";
