-- zoe-local SQLite schema, version 1: the seed's three tables, hardened.
-- seq is unique per mode (the store assigns it inside the inserting transaction);
-- flushed_at drives retention; the partial index keeps the flusher's scan cheap.
CREATE TABLE local_events (
  id TEXT PRIMARY KEY,
  mode TEXT NOT NULL CHECK (mode IN ('paper', 'live')),
  ts TEXT NOT NULL,
  seq INTEGER NOT NULL CHECK (seq > 0),
  source TEXT NOT NULL,
  type TEXT NOT NULL,
  subtype TEXT NOT NULL,
  symbol TEXT,
  severity TEXT NOT NULL DEFAULT 'info' CHECK (severity IN ('debug', 'info', 'warn', 'error', 'critical')),
  body TEXT NOT NULL,
  meta_json TEXT NOT NULL DEFAULT '{}',
  idempotency_key TEXT NOT NULL UNIQUE,
  flushed INTEGER NOT NULL DEFAULT 0,
  flushed_at TEXT,
  created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);

CREATE UNIQUE INDEX idx_local_events_mode_seq ON local_events (mode, seq);
CREATE INDEX idx_local_events_unflushed ON local_events (mode, seq) WHERE flushed = 0;
CREATE INDEX idx_local_events_flushed_at ON local_events (flushed_at) WHERE flushed = 1;

CREATE TABLE local_flush_log (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  ts TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
  mode TEXT NOT NULL,
  count INTEGER NOT NULL,
  last_seq INTEGER NOT NULL,
  status TEXT NOT NULL CHECK (status IN ('ok', 'partial', 'error')),
  error TEXT
);
CREATE INDEX idx_local_flush_log_mode ON local_flush_log (mode, id);

CREATE TABLE local_state_snapshots (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  mode TEXT NOT NULL CHECK (mode IN ('paper', 'live')),
  ts TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
  state_json TEXT NOT NULL
);
CREATE INDEX idx_local_state_snapshots_mode ON local_state_snapshots (mode, id);
