// The status report of src/ops/status.ts on a real store and the operations
// wiring (bounded store, readiness); GET /local/status serving it is in
// tests/http/operator.test.ts.
import { afterEach, expect, test } from "bun:test";
import { join } from "node:path";
import type { Mode } from "../../supabase/functions/_shared/event-schema.ts";
import type { FlushStatusSource } from "../../src/flush/flusher.ts";
import { readBuildInfo } from "../../src/ops/build-info.ts";
import { createHealth } from "../../src/ops/health.ts";
import { createStatusReport } from "../../src/ops/status.ts";
import { opsApp } from "../helpers/ops.ts";
import { createWriterWatch, type WriterWatch } from "../../src/flush/writers.ts";
import { manualClock } from "../../src/lib/clock.ts";

const apps: ReturnType<typeof opsApp>[] = [];
afterEach(() => {
  for (const a of apps.splice(0)) a.close();
});

function report(
  failures: Partial<Record<Mode, { consecutive_failures: number; last_error: string }>> | null,
  writers: WriterWatch | null = null,
) {
  const t = opsApp({ limits: { maxBacklogEvents: 10 } });
  apps.push(t);
  // The flusher as /health sees it: what its workers report per mode.
  const flusher: FlushStatusSource | null = failures && {
    status: (mode) => failures[mode] ?? { consecutive_failures: 0 },
  };
  const health = createHealth({
    store: t.store,
    clock: t.clock,
    startedAt: t.clock.now(),
    flusher,
    limits: t.ops.limits,
    writers,
  });
  const build = readBuildInfo(join(import.meta.dir, "..", ".."));
  const status = createStatusReport({
    store: t.store,
    hub: t.hub,
    health,
    readiness: t.ops.readiness,
    limits: t.ops.limits,
    build,
    clock: t.clock,
    startedAt: t.clock.now(),
    flusher: () => flusher,
    remoteTarget: flusher ? "https://x.example (edge function)" : null,
  });
  return { t, status };
}

test("createStatusReport() names a failing flush, then an event waiting over 15 min and a backlog past 80%, and says degraded", async () => {
  const { t, status } = report({ paper: { consecutive_failures: 2, last_error: "HTTP 503" } });
  await t.store.append(Array.from({ length: 9 }, () => t.ev()));
  t.clock.advance(20 * 60_000);
  const answer = status();
  expect(answer.status).toBe("degraded");
  expect(answer.problems).toEqual([
    "paper: the last 2 flush attempts failed: HTTP 503",
    "live: the oldest unflushed event waits for 20 min",
    "backlog or disk at 90% of where ordinary events are refused",
  ]);
  expect(answer.remote).toEqual({ configured: true, target: "https://x.example (edge function)" });
  expect(answer.modes.live).toMatchObject({ last_seq: 9, sse_clients: 0 });
});

test("createStatusReport() without a remote does not count waiting events as a problem", async () => {
  const { t, status } = report(null);
  await t.store.append([t.ev()]);
  t.clock.advance(20 * 60_000);
  expect(status()).toMatchObject({ status: "ok", problems: [], remote: { configured: false, target: null } });
});

test("createStatusReport() names a second store writing a mode with both store ids, and shows the store id", () => {
  const clock = manualClock("2026-12-07T16:05:00Z");
  const self = { store_id: "11111111-1111-4111-8111-111111111111", started_at: "2026-12-07T16:00:00.000Z" };
  const other = { store_id: "22222222-2222-4222-8222-222222222222", started_at: "2026-12-07T15:00:00.000Z" };
  const writers = createWriterWatch({ self, clock });
  const { t, status } = report({}, writers);
  writers.note("live", { writer: self, second_writer_at: "2026-12-07T16:04:00.000Z", second_writer: [self, other] });
  const answer = status();
  expect(answer.status).toBe("degraded");
  expect(answer.problems).toEqual([
    `live: a second store writes this mode: ${self.store_id} and ${other.store_id} (last seen alternating at 2026-12-07T16:04:00.000Z); stop the one that should not run`,
  ]);
  expect(answer.db.store_id).toBe(t.store.storeId);
  expect(answer.modes.live).toMatchObject({ remote_writer: self, second_writer: { active: true } });
  expect(answer.modes.paper).toMatchObject({ second_writer: null });
});
