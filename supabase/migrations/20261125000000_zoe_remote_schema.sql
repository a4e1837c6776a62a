-- Remote schema of zoe-local: the system of record the flusher ships to.
-- One source of truth: `supabase db push` applies this directory to a real
-- project and scripts/supabase-local applies the very same files to the local
-- test stack. The roles anon/authenticated/service_role are Supabase's own
-- (the local stack creates them the same way before applying migrations).

create table if not exists public.zoe_events (
  id uuid primary key,
  mode text not null check (mode in ('paper', 'live')),
  ts timestamptz not null,
  seq bigint not null check (seq >= 1),
  source text not null,
  type text not null,
  subtype text not null,
  symbol text,
  severity text not null default 'info' check (severity in ('debug', 'info', 'warn', 'error', 'critical')),
  body text not null,
  meta jsonb not null default '{}'::jsonb,
  -- A real constraint, not a partial unique index: ON CONFLICT (and PostgREST's
  -- on_conflict) can only target a constraint or a non-partial index.
  idempotency_key text not null constraint zoe_events_idempotency_key_key unique,
  received_at timestamptz not null default now()
);

-- Made unique by 20261207000000_zoe_store_identity.sql (seq ranges: no store reuses a seq).
create index if not exists zoe_events_mode_seq_idx on public.zoe_events (mode, seq);

create table if not exists public.zoe_health (
  mode text primary key check (mode in ('paper', 'live')),
  last_flush_ts timestamptz,
  last_seq bigint,
  last_batch_count integer not null default 0,
  backlog bigint not null default 0,
  updated_at timestamptz not null default now()
);

create table if not exists public.zoe_state (
  mode text primary key check (mode in ('paper', 'live')),
  ts timestamptz not null,
  state jsonb not null,
  updated_at timestamptz not null default now()
);

-- Readers (dashboard with the anon key) may only SELECT; writes need
-- service_role, which bypasses RLS. Privileges are narrowed as well, so a
-- missing policy can never turn into a write path.
alter table public.zoe_events enable row level security;
alter table public.zoe_health enable row level security;
alter table public.zoe_state enable row level security;

revoke all on table public.zoe_events, public.zoe_health, public.zoe_state from anon, authenticated;
grant select on table public.zoe_events, public.zoe_health, public.zoe_state to anon, authenticated;
grant all on table public.zoe_events, public.zoe_health, public.zoe_state to service_role;

drop policy if exists zoe_events_read on public.zoe_events;
create policy zoe_events_read on public.zoe_events for select to anon, authenticated using (true);
drop policy if exists zoe_health_read on public.zoe_health;
create policy zoe_health_read on public.zoe_health for select to anon, authenticated using (true);
drop policy if exists zoe_state_read on public.zoe_state;
create policy zoe_state_read on public.zoe_state for select to anon, authenticated using (true);

-- A dashboard in REMOTE mode may subscribe with Supabase Realtime; publish
-- the tables where the publication exists (every Supabase project has it;
-- plain Postgres, such as the local test stack, does not).
do $$
declare t text;
begin
  if exists (select 1 from pg_publication where pubname = 'supabase_realtime') then
    foreach t in array array['zoe_events', 'zoe_health', 'zoe_state'] loop
      if not exists (select 1 from pg_publication_tables where pubname = 'supabase_realtime' and schemaname = 'public' and tablename = t) then
        execute format('alter publication supabase_realtime add table public.%I', t);
      end if;
    end loop;
  end if;
end $$;
