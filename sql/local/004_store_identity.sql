-- zoe-local SQLite schema, version 4: the store's identity and its seq ranges.
-- local_store holds one row: the store id (a UUID v4) made with the store, or
-- here for a store made before this version. It travels with every batch and
-- is recorded in Supabase, so the remote can tell two stores writing one mode.
-- A backup copy keeps the id (it is the same store); each start of a copy is
-- still told apart by its range (docs/flushing.md, "Seq ranges").
CREATE TABLE local_store (
  id INTEGER PRIMARY KEY CHECK (id = 1),
  store_id TEXT NOT NULL,
  created_at TEXT NOT NULL
);

INSERT INTO local_store (id, store_id, created_at)
SELECT 1,
       lower(hex(randomblob(4)) || '-' || hex(randomblob(2)) || '-4' || substr(hex(randomblob(2)), 2) || '-' ||
             substr('89ab', 1 + (abs(random()) % 4), 1) || substr(hex(randomblob(2)), 2) || '-' || hex(randomblob(6))),
       COALESCE((SELECT MIN(created_at) FROM local_events), strftime('%Y-%m-%dT%H:%M:%fZ', 'now'));

-- Every start of the store begins a new range per mode, above everything the
-- store holds and above a time base (start ms x 1000); the range is recorded
-- here by the commit of its first event. Within a range seqs are gapless;
-- from one range to the next they jump forward. A store made before this
-- version gets one range per mode starting at its lowest stored seq.
CREATE TABLE local_seq_ranges (
  mode TEXT NOT NULL CHECK (mode IN ('paper', 'live')),
  start_seq INTEGER NOT NULL CHECK (start_seq > 0),
  started_at TEXT NOT NULL,
  store_id TEXT NOT NULL,
  PRIMARY KEY (mode, start_seq)
) WITHOUT ROWID;

INSERT INTO local_seq_ranges (mode, start_seq, started_at, store_id)
SELECT e.mode, MIN(e.seq), MIN(e.created_at), (SELECT store_id FROM local_store WHERE id = 1)
  FROM local_events e GROUP BY e.mode;
