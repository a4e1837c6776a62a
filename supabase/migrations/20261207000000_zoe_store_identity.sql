-- Store continuity: which local store wrote each event, which store writes
-- each mode now, and (mode, seq) unique. Every zoe-local start begins a new
-- seq range above its store, its start time x 1000 and (when Supabase answers
-- at start) this table's highest seq, so no two stores, backups or boxes ever
-- assign the same seq (docs/flushing.md, "Seq ranges").

-- The store id the batch came from; null on rows written before this migration
-- (or by a zoe-local too old to send one).
alter table public.zoe_events add column if not exists store_id uuid;

-- (mode, seq) unique. A project whose old rows already share seqs (a store
-- rebuilt by a version that restarted seqs at 1) keeps them: the index then
-- covers every row written with a store id, that is every row of this version,
-- and the old rows stay as they are (their seqs are below every new range).
-- A write that would reuse a seq is refused; the flusher quarantines that
-- event, so it shows, and nothing shares a seq.
do $$
begin
  if not exists (select 1 from public.zoe_events group by mode, seq having count(*) > 1) then
    create unique index if not exists zoe_events_mode_seq_key on public.zoe_events (mode, seq);
    drop index if exists public.zoe_events_mode_seq_idx;
  else
    create unique index if not exists zoe_events_mode_seq_key on public.zoe_events (mode, seq) where store_id is not null;
    raise notice 'zoe_events already holds rows that share a (mode, seq); (mode, seq) is unique for rows with a store_id';
  end if;
end $$;

-- The current writer of each mode, the one before it, and the last time two
-- stores (or two starts of one store's copies) were seen writing the mode
-- back and forth. A writer is a store id and the time that start began.
alter table public.zoe_health
  add column if not exists writer_store_id uuid,
  add column if not exists writer_started_at timestamptz,
  add column if not exists writer_seen_at timestamptz,
  add column if not exists previous_writer_store_id uuid,
  add column if not exists previous_writer_started_at timestamptz,
  add column if not exists second_writer_at timestamptz,
  add column if not exists second_writer jsonb;

-- Both sinks upsert zoe_health with the writer of the batch; this trigger
-- keeps the history. A new writer that replaces the current one (a restart, a
-- new box) is a handover. The previous writer coming back while the current
-- one wrote within 10 minutes means both are alive: that is a second writer,
-- recorded with both ids in second_writer, and answered to the flusher.
create or replace function public.zoe_health_writer() returns trigger language plpgsql as $$
begin
  if new.writer_store_id is null then
    -- A flusher that sends no identity: the known writer stays.
    if tg_op = 'UPDATE' then
      new.writer_store_id := old.writer_store_id;
      new.writer_started_at := old.writer_started_at;
      new.writer_seen_at := old.writer_seen_at;
    end if;
    return new;
  end if;
  if tg_op = 'INSERT' or old.writer_store_id is null then
    new.writer_seen_at := now();
    return new;
  end if;
  if new.writer_store_id = old.writer_store_id and new.writer_started_at is not distinct from old.writer_started_at then
    new.writer_seen_at := now();
    return new;
  end if;
  if new.writer_store_id = old.previous_writer_store_id
     and new.writer_started_at is not distinct from old.previous_writer_started_at
     and old.writer_seen_at > now() - interval '10 minutes' then
    new.second_writer_at := now();
    new.second_writer := jsonb_build_array(
      jsonb_build_object('store_id', new.writer_store_id, 'started_at', new.writer_started_at),
      jsonb_build_object('store_id', old.writer_store_id, 'started_at', old.writer_started_at, 'seen_at', old.writer_seen_at));
  end if;
  new.previous_writer_store_id := old.writer_store_id;
  new.previous_writer_started_at := old.writer_started_at;
  new.writer_seen_at := now();
  return new;
end $$;

drop trigger if exists zoe_health_writer on public.zoe_health;
create trigger zoe_health_writer before insert or update on public.zoe_health
  for each row execute function public.zoe_health_writer();
