-- zoe-local SQLite schema, version 2: the flusher's quarantine.
-- An event the remote rejects for good (poison) is set aside with its reason
-- so the queue keeps flowing: local_events.flushed = 2 takes it out of the
-- unflushed scan (flushed = 0) and out of retention pruning (flushed = 1).
-- Releasing it (after a fix) sets flushed back to 0 and stamps released_at;
-- a new rejection re-opens the same row with attempts + 1.
CREATE TABLE local_quarantine (
  event_id TEXT PRIMARY KEY REFERENCES local_events (id) ON DELETE CASCADE,
  mode TEXT NOT NULL CHECK (mode IN ('paper', 'live')),
  seq INTEGER NOT NULL,
  reason TEXT NOT NULL,
  errors_json TEXT NOT NULL DEFAULT '[]',
  remote_status INTEGER,
  attempts INTEGER NOT NULL DEFAULT 1,
  quarantined_at TEXT NOT NULL,
  released_at TEXT
);
CREATE INDEX idx_local_quarantine_open ON local_quarantine (mode, seq) WHERE released_at IS NULL;
