import { describe, expect, test } from "bun:test";
import {
  createLocalApi,
  describeLocalError,
  LocalRefused,
  localHealth,
  localState,
} from "../../src/client/local-api.ts";
import { FakeFetch, localStateResponse } from "./fakes.ts";

describe("createLocalApi()", () => {
  test("builds the stream URL from the base (trailing slashes dropped) with heartbeats as events and the token encoded", () => {
    const api = createLocalApi({
      mode: "live",
      baseUrl: "http://box:8765//",
      apiToken: "a b&c",
      fetch: new FakeFetch(() => "down").fetch,
    });
    expect(api.streamUrl(42)).toBe(
      "http://box:8765/local/stream?mode=live&last_event_id=42&heartbeat=event&token=a%20b%26c",
    );
  });

  test("an empty base is the page's own origin; no token, no ?token=", () => {
    const api = createLocalApi({
      mode: "paper",
      baseUrl: "",
      apiToken: null,
      fetch: new FakeFetch(() => "down").fetch,
    });
    expect(api.streamUrl(0)).toBe("/local/stream?mode=paper&last_event_id=0&heartbeat=event");
  });

  test("fetchWindowStart() is the position before the newest events the store holds (0 when it has fewer), whatever their seqs", async () => {
    let held = [5, 6, 1_796_659_575_835_000, 1_796_659_575_835_001];
    const fetch = new FakeFetch((url) =>
      url.pathname === "/local/events"
        ? Response.json(held.slice(-Number(url.searchParams.get("limit"))).map((seq) => ({ seq })))
        : new Response("no", { status: 401 }),
    );
    const api = createLocalApi({ mode: "live", baseUrl: "http://box:8765", apiToken: "t", fetch: fetch.fetch });
    const signal = new AbortController().signal;
    expect(await api.fetchWindowStart!(3, signal)).toBe(5);
    expect(fetch.calls.at(-1)).toBe("http://box:8765/local/events?mode=live&limit=3&token=t");
    expect(await api.fetchWindowStart!(10, signal)).toBe(0);
    held = [];
    expect(await api.fetchWindowStart!(3, signal)).toBe(0);
  });

  test("fetchState() returns the body of GET /local/state and throws LocalRefused with the status otherwise", async () => {
    let status = 200;
    const fetch = new FakeFetch(() =>
      status === 200 ? localStateResponse("paper", 7) : new Response("no", { status }),
    );
    const api = createLocalApi({ mode: "paper", baseUrl: "http://box:8765", apiToken: "t", fetch: fetch.fetch });
    expect((await api.fetchState(new AbortController().signal)).last_seq).toBe(7);
    expect(fetch.calls).toEqual(["http://box:8765/local/state?mode=paper&token=t"]);
    status = 401;
    const refused = await api.fetchState(new AbortController().signal).catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(LocalRefused);
    expect((refused as LocalRefused).status).toBe(401);
  });
});

describe("describeLocalError()", () => {
  test("names a refused token, another status, and an unreachable API", () => {
    expect(describeLocalError(new LocalRefused(401))).toBe("the local API refused the token (401)");
    expect(describeLocalError(new LocalRefused(503))).toBe("the local API answered 503");
    expect(describeLocalError(new TypeError("Failed to fetch"))).toBe("the local API is unreachable (Failed to fetch)");
  });
});

describe("localHealth() and localState()", () => {
  test("map GET /local/state to the feed's types, nulls for what is missing or malformed", () => {
    expect(
      localHealth({
        backlog: "3",
        last_flush_ts: "2026-01-05T15:00:00.000Z",
        last_flush_status: "ok",
        last_batch_count: 5,
        remote_configured: false,
      }),
    ).toEqual({
      backlog: 3,
      lastFlushTs: "2026-01-05T15:00:00.000Z",
      lastFlushStatus: "ok",
      lastFlushError: null,
      lastBatchCount: 5,
      syncedAt: "2026-01-05T15:00:00.000Z",
      remoteConfigured: false,
      source: "local",
    });
    // A failed latest attempt: synced only as of the last success the flusher reports.
    expect(
      localHealth({
        backlog: "x",
        last_flush_status: "error",
        last_flush_ts: "2026-01-05T15:02:00.000Z",
        last_success_at: "2026-01-05T15:01:00.000Z",
      }),
    ).toMatchObject({
      backlog: null,
      syncedAt: "2026-01-05T15:01:00.000Z",
      remoteConfigured: null,
    });
    // The flusher's success shows as the last flush while the flush log has none yet.
    expect(localHealth({ last_success_at: "2026-01-05T15:01:00.000Z", remote_configured: true })).toMatchObject({
      lastFlushTs: "2026-01-05T15:01:00.000Z",
      lastFlushStatus: "ok",
      syncedAt: "2026-01-05T15:01:00.000Z",
    });
    expect(localState({ cash: 10, state_ts: "", last_seq: 4 })).toEqual({
      cash: 10,
      holdings: null,
      positions: null,
      ts: null,
      lastSeq: 4,
    });
  });
});
