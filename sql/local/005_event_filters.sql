-- zoe-local SQLite schema, version 5: filtered reads of local_events.
-- GET /local/events?subtype=… / ?severity=… asks for the newest events of a
-- few subtypes or severities (a dashboard loading the fills and kill switches
-- that 100,000 ticks came after). On the (mode, seq) index that is a walk
-- down every row of the mode until enough match; on these it is one seek per
-- listed value that reads at most `limit` rows (src/store/queries.ts names
-- them with INDEXED BY). The severity index holds only warn, error and
-- critical rows: the debug and info floods a bot writes cost it nothing, and
-- severity=info (every level but debug) reads along (mode, seq) instead.
CREATE INDEX idx_local_events_mode_subtype_seq ON local_events (mode, subtype, seq);
CREATE INDEX idx_local_events_mode_severity_seq ON local_events (mode, severity, seq)
  WHERE severity IN ('warn', 'error', 'critical');
