// The Bun side imports the shared schema from where the Edge Function bundle
// can reach it too; see supabase/functions/_shared/event-schema.ts.
export * from "../../supabase/functions/_shared/event-schema.ts";
