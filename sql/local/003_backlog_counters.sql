-- zoe-local SQLite schema, version 3: the unflushed backlog as counters.
-- Start-up and /health used to COUNT and SUM the unflushed rows; with a large
-- backlog that is a pass over every one of them on each start. The counters
-- hold the same numbers (events with flushed = 0, and their bytes as
-- EVENT_BYTES_SQL counts them) and change in the transaction that changes the
-- rows: the writer adds each commit's new events with one UPDATE per mode (a
-- per-row INSERT trigger would cost the ingest path a statement per event);
-- the triggers below follow every other change (flush marks, quarantine,
-- releases, deletes), whichever code or operator makes it.
CREATE TABLE local_backlog (
  mode TEXT PRIMARY KEY CHECK (mode IN ('paper', 'live')),
  events INTEGER NOT NULL DEFAULT 0,
  bytes INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID;

-- One pass over the unflushed rows (the partial index), once, in this
-- migration's transaction: bounded by the backlog, not by the table.
INSERT INTO local_backlog (mode, events, bytes)
SELECT m.mode,
       (SELECT COUNT(*) FROM local_events e WHERE e.mode = m.mode AND e.flushed = 0),
       (SELECT COALESCE(SUM(length(CAST(e.body AS BLOB)) + length(CAST(e.meta_json AS BLOB)) + 200), 0)
          FROM local_events e WHERE e.mode = m.mode AND e.flushed = 0)
FROM (SELECT 'paper' AS mode UNION ALL SELECT 'live') AS m;

CREATE TRIGGER local_backlog_on_update AFTER UPDATE OF flushed, mode, body, meta_json ON local_events
WHEN OLD.flushed = 0 OR NEW.flushed = 0
BEGIN
  UPDATE local_backlog
     SET events = events - 1, bytes = bytes - (length(CAST(OLD.body AS BLOB)) + length(CAST(OLD.meta_json AS BLOB)) + 200)
   WHERE mode = OLD.mode AND OLD.flushed = 0;
  UPDATE local_backlog
     SET events = events + 1, bytes = bytes + (length(CAST(NEW.body AS BLOB)) + length(CAST(NEW.meta_json AS BLOB)) + 200)
   WHERE mode = NEW.mode AND NEW.flushed = 0;
END;

CREATE TRIGGER local_backlog_on_delete AFTER DELETE ON local_events
WHEN OLD.flushed = 0
BEGIN
  UPDATE local_backlog
     SET events = events - 1, bytes = bytes - (length(CAST(OLD.body AS BLOB)) + length(CAST(OLD.meta_json AS BLOB)) + 200)
   WHERE mode = OLD.mode;
END;
