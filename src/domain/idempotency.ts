// The idempotency rule (a repeated key is a retry only when the event is the
// same), shared with the Edge Function; see supabase/functions/_shared/idempotency.ts.
export * from "../../supabase/functions/_shared/idempotency.ts";
