import { createWriterWatch } from "../../src/flush/writers.ts";
import { afterEach, describe, expect, test } from "bun:test";
import { join } from "node:path";
import { readBuildInfo } from "../../src/ops/build-info.ts";
import { manualClock } from "../../src/lib/clock.ts";
import { createHub } from "../../src/stream/hub.ts";
import { createMetrics, outcomeOf } from "../../src/ops/metrics.ts";
import type { StoredEvent } from "../../supabase/functions/_shared/event-schema.ts";
import { RemoteUnavailableError, type Sink, type SinkBatch } from "../../src/flush/sink.ts";
import { openStore } from "../../src/store/store.ts";
import { opsAppsClosedAfterEach, parseMetrics } from "../helpers/ops.ts";
import { tempDir } from "../helpers/tmp.ts";

const cleanups: (() => void)[] = [];
afterEach(() => {
  for (const c of cleanups.splice(0).reverse()) c();
});

const setup = opsAppsClosedAfterEach();

describe("GET /metrics", () => {
  test("answers in the Prometheus text format, every series present from the start", async () => {
    const t = setup();
    const res = await t.handle("/metrics");
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toBe("text/plain; version=0.0.4; charset=utf-8");
    const text = await res.text();
    expect(text).toContain("# TYPE zoe_ingest_duration_seconds histogram");
    expect(text).toContain("# HELP zoe_backlog_events Unflushed events");
    const m = parseMetrics(text);
    for (const key of [
      'zoe_ingest_requests_total{outcome="created"}',
      'zoe_ingest_events_total{mode="paper",outcome="created"}',
      "zoe_ingest_duration_seconds_count",
      'zoe_backlog_events{mode="live"}',
      'zoe_backlog_bytes{mode="live"}',
      'zoe_oldest_unflushed_age_seconds{mode="live"}',
      'zoe_flush_failures_total{mode="live"}',
      'zoe_quarantined_events{mode="live"}',
      'zoe_sse_clients{mode="live"}',
    ]) {
      expect(m.get(key)).toBe(0);
    }
    expect(m.get("zoe_db_size_bytes")).toBeGreaterThan(0);
    expect(m.has("zoe_wal_size_bytes")).toBe(true);
  });

  test("every counter a panel or an alert reads has its known label sets at 0 on a fresh box, not 'No data'", async () => {
    const m = parseMetrics(await (await setup().handle("/metrics")).text());
    const expected = [
      ...["created", "duplicate", "conflict", "invalid", "refused", "unavailable", "error"].map(
        (o) => `zoe_ingest_requests_total{outcome="${o}"}`,
      ),
      ...["internal", "store_unavailable", "backlog_full", "disk_low"].map(
        (c) => `zoe_http_server_errors_total{code="${c}"}`,
      ),
      ...["paper", "live"].flatMap((mode) => [
        `zoe_flush_requests_total{mode="${mode}",outcome="ok"}`,
        `zoe_flush_failures_total{mode="${mode}"}`,
        ...["accepted", "duplicate", "rejected"].map((v) => `zoe_flush_events_total{mode="${mode}",verdict="${v}"}`),
        ...["client", "slow", "shutdown"].map((r) => `zoe_sse_disconnects_total{mode="${mode}",reason="${r}"}`),
      ]),
    ];
    expect(expected.filter((key) => m.get(key) !== 0)).toEqual([]);
  });

  test("needs the token like other reads (header or ?token=)", async () => {
    const token = "metrics-token-0123456789";
    const t = setup({ apiToken: token });
    expect((await t.handle("/metrics")).status).toBe(401);
    expect((await t.handle("/metrics", { headers: { authorization: `Bearer ${token}` } })).status).toBe(200);
    expect((await t.handle(`/metrics?token=${token}`)).status).toBe(200);
  });

  test("counts ingest requests by outcome and events by mode, and times the acknowledged ones", async () => {
    const t = setup({ limits: { maxBacklogEvents: 6, criticalReserveEvents: 1 } });
    const same = t.ev({ idempotency_key: "same" });
    await t.post([t.ev(), t.ev({ mode: "paper" }), same]);
    await t.post(same);
    await t.post([same, t.ev()]);
    await t.post({ ...same, body: "another event under the same key" });
    await t.post({ mode: "live" });
    await t.handle("/local/events", { method: "POST", headers: { "content-type": "text/plain" }, body: "x" });
    await t.post([t.ev(), t.ev()]); // refused: 5 + 2 > 6 - 1
    const m = await t.metrics();
    expect(m.get('zoe_ingest_requests_total{outcome="created"}')).toBe(2);
    expect(m.get('zoe_ingest_requests_total{outcome="duplicate"}')).toBe(1);
    expect(m.get('zoe_ingest_requests_total{outcome="conflict"}')).toBe(1);
    expect(m.get('zoe_ingest_requests_total{outcome="invalid"}')).toBe(2);
    expect(m.get('zoe_ingest_requests_total{outcome="refused"}')).toBe(1);
    expect(m.get('zoe_ingest_events_total{mode="live",outcome="created"}')).toBe(3);
    expect(m.get('zoe_ingest_events_total{mode="paper",outcome="created"}')).toBe(1);
    expect(m.get('zoe_ingest_events_total{mode="live",outcome="duplicate"}')).toBe(2);
    expect(m.get("zoe_ingest_duration_seconds_count")).toBe(3);
    expect(m.get('zoe_ingest_duration_seconds_bucket{le="+Inf"}')).toBe(3);
    expect(m.get('zoe_http_server_errors_total{code="backlog_full"}')).toBe(1);
  });

  test("backlog, its bytes and the age of the oldest unflushed event follow the store", async () => {
    const t = setup();
    await t.post([t.ev({ body: "abc" }), t.ev({ body: "défg" })]);
    t.clock.advance(90_000);
    let m = await t.metrics();
    expect(m.get('zoe_backlog_events{mode="live"}')).toBe(2);
    expect(m.get('zoe_backlog_bytes{mode="live"}')).toBe(t.store.backlogUsage("live").bytes);
    expect(m.get('zoe_oldest_unflushed_age_seconds{mode="live"}')).toBe(90);
    expect(m.get('zoe_last_seq{mode="live"}')).toBe(2);
    t.store.markFlushed(t.store.unflushed("live", 10).map((e) => e.id));
    m = await t.metrics();
    expect(m.get('zoe_backlog_events{mode="live"}')).toBe(0);
    expect(m.get('zoe_backlog_bytes{mode="live"}')).toBe(0);
    expect(m.get('zoe_oldest_unflushed_age_seconds{mode="live"}')).toBe(0);
  });

  test("quarantined events and open SSE clients", async () => {
    const t = setup();
    await t.post([t.ev(), t.ev()]);
    t.quarantine.add([{ event: t.store.unflushed("live", 1)[0]!, reason: "poison" }]);
    const controller = new AbortController();
    const stream = await t.handle("/local/stream?mode=live", { signal: controller.signal });
    const reader = stream.body!.getReader();
    await reader.read();
    let m = await t.metrics();
    expect(m.get('zoe_quarantined_events{mode="live"}')).toBe(1);
    expect(m.get('zoe_backlog_events{mode="live"}')).toBe(1);
    expect(m.get('zoe_sse_clients{mode="live"}')).toBe(1);
    expect(m.get('zoe_sse_clients{mode="paper"}')).toBe(0);
    await reader.cancel();
    m = await t.metrics();
    expect(m.get('zoe_sse_clients{mode="live"}')).toBe(0);
    expect(m.get('zoe_sse_disconnects_total{mode="live",reason="client"}')).toBe(1);
  });
});

describe("createMetrics().instrumentSink()", () => {
  function harness() {
    const dir = tempDir();
    const store = openStore({ path: dir.file("zoe.db") });
    cleanups.push(() => (store.close(), dir.cleanup()));
    const metrics = createMetrics({ store, hub: createHub(), clock: manualClock(0), processMetrics: false });
    return { metrics, read: async () => parseMetrics(await metrics.text()) };
  }
  const batch = (signal = new AbortController().signal): SinkBatch => ({
    mode: "live",
    events: [{ seq: 1 } as StoredEvent],
    backlog: 0,
    state: null,
    signal,
  });

  test("counts sends by outcome, failures, verdicts, and times each send", async () => {
    const { metrics, read } = harness();
    let fail = false;
    const sink: Sink = {
      name: "fake",
      async send() {
        if (fail) throw new RemoteUnavailableError("502 from the gateway");
        return {
          results: [
            { idempotency_key: "a", seq: 1, status: "accepted" },
            { idempotency_key: "b", seq: 2, status: "duplicate" },
            { idempotency_key: "c", seq: 3, status: "accepted" },
          ],
        };
      },
    };
    const wrapped = metrics.instrumentSink(sink);
    expect(wrapped.name).toBe("fake");
    expect((await wrapped.send(batch())).results).toHaveLength(3);
    fail = true;
    await expect(wrapped.send(batch())).rejects.toBeInstanceOf(RemoteUnavailableError);
    const m = await read();
    expect(m.get('zoe_flush_requests_total{mode="live",outcome="ok"}')).toBe(1);
    expect(m.get('zoe_flush_requests_total{mode="live",outcome="remote_unavailable"}')).toBe(1);
    expect(m.get('zoe_flush_failures_total{mode="live"}')).toBe(1);
    expect(m.get('zoe_flush_events_total{mode="live",verdict="accepted"}')).toBe(2);
    expect(m.get('zoe_flush_events_total{mode="live",verdict="duplicate"}')).toBe(1);
    expect(m.get('zoe_flush_duration_seconds_count{mode="live"}')).toBe(2);
  });

  test("the wrapped sink still says whether it commits in order, also when that changes", async () => {
    const { metrics } = harness();
    let ordered = true;
    const sink: Sink = {
      name: "edge",
      get ordered() {
        return ordered;
      },
      send: async () => ({ results: [] }),
    };
    const wrapped = metrics.instrumentSink(sink);
    expect(wrapped.ordered).toBe(true);
    ordered = false;
    expect(wrapped.ordered).toBe(false);
  });

  test("a send cut short by shutdown is 'aborted', not a failure", async () => {
    const { metrics, read } = harness();
    const controller = new AbortController();
    const wrapped = metrics.instrumentSink({
      name: "fake",
      send: () => {
        controller.abort();
        return Promise.reject(new Error("aborted"));
      },
    });
    await wrapped.send(batch(controller.signal)).catch(() => {});
    const m = await read();
    expect(m.get('zoe_flush_requests_total{mode="live",outcome="aborted"}')).toBe(1);
    expect(m.get('zoe_flush_failures_total{mode="live"}')).toBe(0);
  });
});

test("outcomeOf() tells refusals by the bounded store from an unavailable database", () => {
  expect(outcomeOf(503, "backlog_full")).toBe("refused");
  expect(outcomeOf(503, "disk_low")).toBe("refused");
  expect(outcomeOf(503, "store_unavailable")).toBe("unavailable");
  expect(outcomeOf(500, "internal")).toBe("error");
  expect(outcomeOf(413, "payload_too_large")).toBe("invalid");
});

describe("build and process metrics", () => {
  function registry(extra: Partial<Parameters<typeof createMetrics>[0]> = {}) {
    const dir = tempDir();
    const store = openStore({ path: dir.file("zoe.db") });
    cleanups.push(() => (store.close(), dir.cleanup()));
    return createMetrics({ store, hub: createHub(), clock: manualClock(0), ...extra });
  }

  test("zoe_build_info carries the version, commit, Bun and SQLite versions of what runs", async () => {
    const build = readBuildInfo(join(import.meta.dir, "..", ".."));
    const m = parseMetrics(await registry({ processMetrics: false, build }).text());
    expect(
      m.get(
        `zoe_build_info{version="${build.version}",commit="${build.commit}",bun="${Bun.version}",sqlite="${build.sqlite}"}`,
      ),
    ).toBe(1);
  });

  test("zoe_build_info carries the store id; zoe_mode_writers and zoe_second_writer_total follow the remote's writer reports", async () => {
    const build = readBuildInfo(join(import.meta.dir, "..", ".."));
    const clock = manualClock("2026-12-07T16:05:00Z");
    const self = { store_id: "11111111-1111-4111-8111-111111111111", started_at: "2026-12-07T16:00:00.000Z" };
    const other = { store_id: "22222222-2222-4222-8222-222222222222", started_at: "2026-12-07T15:00:00.000Z" };
    const writers = createWriterWatch({ self, clock });
    const metrics = registry({ processMetrics: false, build, storeId: self.store_id, writers });
    let m = parseMetrics(await metrics.text());
    expect(
      m.get(
        `zoe_build_info{version="${build.version}",commit="${build.commit}",bun="${Bun.version}",sqlite="${build.sqlite}",store_id="${self.store_id}"}`,
      ),
    ).toBe(1);
    expect([m.get('zoe_mode_writers{mode="live"}'), m.get('zoe_second_writer_total{mode="live"}')]).toEqual([1, 0]);
    writers.note("live", { writer: self, second_writer_at: "2026-12-07T16:04:00Z", second_writer: [self, other] });
    m = parseMetrics(await metrics.text());
    expect([m.get('zoe_mode_writers{mode="live"}'), m.get('zoe_second_writer_total{mode="live"}')]).toEqual([2, 1]);
    expect(m.get('zoe_mode_writers{mode="paper"}')).toBe(1);
  });

  test("prom-client's Node-only metrics that mislead under Bun are dropped; the meaningful process metrics stay", async () => {
    const text = await registry().text();
    for (const name of [
      "nodejs_version_info",
      "nodejs_heap_space_size_used_bytes",
      "nodejs_active_handles_total",
      "nodejs_gc_duration_seconds",
    ]) {
      expect(text).not.toContain(`# TYPE ${name} `);
    }
    for (const name of [
      "process_resident_memory_bytes",
      "process_cpu_seconds_total",
      "nodejs_eventloop_lag_p99_seconds",
      "nodejs_heap_size_used_bytes",
    ]) {
      expect(text).toContain(`# TYPE ${name} `);
    }
  });

  test("zoe_ready follows readiness and zoe_remote_configured says whether anything is ever flushed", async () => {
    let ready = true;
    const metrics = registry({ processMetrics: false, ready: () => ready, remoteConfigured: false });
    expect(parseMetrics(await metrics.text()).get("zoe_ready")).toBe(1);
    ready = false;
    const m = parseMetrics(await metrics.text());
    expect(m.get("zoe_ready")).toBe(0);
    expect(m.get("zoe_remote_configured")).toBe(0);
  });
});
