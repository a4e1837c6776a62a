// Local Supabase-compatible stack for tests: fresh Postgres database with the
// migrations applied, the real zoe-ingest Edge Function under Deno, and a
// PostgREST-subset gateway. See scripts/supabase-local/ for what each part implements.
import type { SupabaseStack } from "../../scripts/supabase-local/stack.ts";

export { startSupabaseStack, FUNCTION_NAME } from "../../scripts/supabase-local/stack.ts";
export type { SupabaseStack, SupabaseStackOptions } from "../../scripts/supabase-local/stack.ts";

/**
 * Makes the stack's Postgres refuse any zoe_events row whose body is
 * 'poison' (SQLSTATE 22023, class 22 like a bad value), although the shared
 * schema accepts it: the poison event that a sink must report as `rejected`
 * while the rest of its batch lands.
 */
export async function refusePoisonRows(stack: SupabaseStack): Promise<void> {
  await stack.sql.unsafe(`
    create function public.refuse_poison() returns trigger language plpgsql as $$
    begin
      if new.body = 'poison' then raise exception 'poison row refused' using errcode = '22023'; end if;
      return new;
    end $$;
    create trigger refuse_poison before insert on public.zoe_events for each row execute function public.refuse_poison();
  `);
}
