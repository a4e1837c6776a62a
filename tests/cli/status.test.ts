import { expect, test } from "bun:test";
import { renderStatus, type StatusBody } from "../../src/cli/commands/status.ts";
import { painter } from "../../src/cli/format.ts";

const mode = (extra: Record<string, unknown> = {}) => ({
  backlog: 0,
  oldest_unflushed_age_ms: null,
  last_flush_ts: null,
  flusher: "idle",
  consecutive_failures: 0,
  quarantined: 0,
  last_seq: 1_796_659_575_835_004,
  sse_clients: 0,
  store: { seq_range: { start_seq: 1_796_659_575_835_000, recorded: true } },
  ...extra,
});

test("renderStatus() prints the store id, where this start's seqs begin, and a second writer with both store ids", () => {
  const body = {
    status: "degraded",
    problems: ["live: a second store writes this mode: a and b"],
    service: { version: "0.1.0", commit: "abc", bun: "1.4.5", sqlite: "3.54.1", pid: 1, uptime_s: 5 },
    db: {
      path: "/var/lib/zoe-local/zoe-local.db",
      size_bytes: 1,
      wal_bytes: 0,
      free_disk_bytes: 1,
      store_id: "11111111-1111-4111-8111-111111111111",
    },
    remote: { configured: true, target: "https://x.example (edge function)" },
    capacity: { accepting: "all", fill_ratio: 0 },
    modes: {
      paper: mode({ store: { seq_range: { start_seq: 1_796_659_575_835_000, recorded: false } }, last_seq: 0 }),
      live: mode({
        second_writer: {
          active: true,
          detected_at: "2026-12-07T16:04:00.000Z",
          writers: [
            { store_id: "11111111-1111-4111-8111-111111111111", started_at: "2026-12-07T16:00:00.000Z" },
            { store_id: "22222222-2222-4222-8222-222222222222", started_at: "2026-12-07T15:00:00.000Z" },
          ],
        },
      }),
    },
  } as unknown as StatusBody;
  const text = renderStatus(
    body,
    "http://127.0.0.1:8765",
    { paint: painter(false) },
    Date.parse("2026-12-07T16:05:00Z"),
  );
  expect(text).toContain("store:     11111111-1111-4111-8111-111111111111\n");
  expect(text).toContain("live: seqs of this start from 1796659575835000\n");
  expect(text).toContain("paper: seqs of this start from 1796659575835000 (no event yet)");
  expect(text).toContain(
    "live: second writer: store 11111111-1111-4111-8111-111111111111 (started 2026-12-07T16:00:00.000Z) and store 22222222-2222-4222-8222-222222222222 (started 2026-12-07T15:00:00.000Z)",
  );
});
