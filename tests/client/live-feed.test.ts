import { describe, expect, test } from "bun:test";
import { createLiveFeed, type LiveFeedOptions } from "../../src/client/live-feed.ts";
import { type FlushHealth, type Mode, SEVERITIES, type Severity, type StoredEvent } from "../../src/client/types.ts";
import {
  EventSources,
  event,
  FakeFetch,
  FakeFrames,
  FakeRemote,
  FakeTimers,
  localStateResponse,
  settle,
} from "./fakes.ts";

type LocalAnswer = "up" | "down" | "hang" | 401;

function setup(options: { local?: LocalAnswer; head?: number; mode?: Mode } & Partial<LiveFeedOptions> = {}) {
  const { local: answer = "up", head = 0, mode = "paper", ...overrides } = options;
  const timers = new FakeTimers();
  const sources = new EventSources();
  const frames = new FakeFrames();
  const remote = new FakeRemote();
  const local = { answer, head };
  const fetch = new FakeFetch((url) => {
    if (url.pathname !== "/local/state") return new Response("not found", { status: 404 });
    if (local.answer === "hang") return "hang";
    if (local.answer === "down") return "down";
    if (local.answer === 401) return Response.json({ error: { code: "unauthorized" } }, { status: 401 });
    return localStateResponse(mode, local.head, {
      backlog: 3,
      last_flush_ts: "2026-01-05T15:00:00.000Z",
      last_flush_status: "ok",
    });
  });
  const feed = createLiveFeed({
    mode,
    localApiUrl: "http://box:8765/",
    remote,
    eventSource: sources.factory,
    fetch: fetch.fetch,
    timers,
    now: () => timers.now,
    random: () => 0,
    schedule: frames.schedule,
    ...overrides,
  });
  return { feed, timers, sources, frames, remote, local, fetch };
}

const seqs = (feed: { getSnapshot(): { events: readonly { seq: number }[] } }) =>
  feed.getSnapshot().events.map((e) => e.seq);

const remoteHealth: FlushHealth = {
  backlog: 0,
  lastFlushTs: "2026-01-05T15:01:00.000Z",
  lastFlushStatus: "ok",
  lastFlushError: null,
  lastBatchCount: 3,
  syncedAt: "2026-01-05T15:01:00.000Z",
  remoteConfigured: true,
  source: "remote",
};

describe("createLiveFeed()", () => {
  test("opens the local stream at the newest window and reports LOCAL only once it is open", async () => {
    const { feed, sources } = setup({ head: 1000, maxEvents: 200 });
    await settle();
    expect(feed.getSnapshot().status).toBe("connecting");
    expect(sources.last.url).toBe("http://box:8765/local/stream?mode=paper&last_event_id=800&heartbeat=event");
    expect(feed.getSnapshot().isLocal).toBe(false);
    sources.last.open();
    const snap = feed.getSnapshot();
    expect(snap.isLocal).toBe(true);
    expect(snap.status).toBe("local");
    expect(snap.state?.cash).toBe(1000);
    expect(snap.health).toMatchObject({ backlog: 3, syncedAt: "2026-01-05T15:00:00.000Z", source: "local" });
    feed.close();
  });

  test("sends the API token as ?token= on every local request", async () => {
    const { feed, sources, fetch } = setup({ apiToken: "s3cret token/1" });
    await settle();
    expect(fetch.calls[0]).toBe("http://box:8765/local/state?mode=paper&token=s3cret%20token%2F1");
    expect(sources.last.url).toBe(
      "http://box:8765/local/stream?mode=paper&last_event_id=0&heartbeat=event&token=s3cret%20token%2F1",
    );
    feed.close();
  });

  test("merges stream events in seq order without duplicates, capped at maxEvents", async () => {
    const { feed, sources } = setup({ maxEvents: 5 });
    await settle();
    const es = sources.last;
    es.open();
    for (const s of [1, 2, 3, 3, 2, 4, 5, 6, 7]) es.send(event(s));
    es.send(event(8, "live"));
    expect(seqs(feed)).toEqual([3, 4, 5, 6, 7]);
    expect(feed.getSnapshot().lastSeq).toBe(7);
    feed.close();
  });

  test("goes REMOTE at once when the stream errors, with Supabase's events, health and state", async () => {
    const { feed, sources, remote } = setup();
    remote.rows = [event(1), event(2), event(3), event(9, "live")];
    remote.healthRow = remoteHealth;
    remote.stateRow = { cash: 5, holdings: null, positions: null, ts: null, lastSeq: 3 };
    await settle();
    sources.last.open();
    sources.last.send(event(1));
    sources.last.fail();
    expect(feed.getSnapshot().status).toBe("remote");
    expect(sources.last.closed).toBe(true);
    await settle();
    const snap = feed.getSnapshot();
    expect(snap.isLocal).toBe(false);
    expect(seqs(feed)).toEqual([1, 2, 3]);
    expect(remote.calls).toContain("events paper >1 200");
    expect(snap.health).toEqual(remoteHealth);
    expect(snap.state?.cash).toBe(5);
    feed.close();
  });

  test("goes REMOTE at once when the local API refuses connections", async () => {
    const { feed, remote } = setup({ local: "down" });
    await settle();
    expect(feed.getSnapshot().status).toBe("remote");
    expect(feed.getSnapshot().localError).toContain("unreachable");
    expect(remote.calls).toContain("health paper");
    feed.close();
  });

  test("goes REMOTE after connectTimeoutMs when the local API hangs", async () => {
    const { feed, timers, fetch } = setup({ local: "hang", connectTimeoutMs: 3000 });
    await timers.advance(2999);
    expect(feed.getSnapshot().status).toBe("connecting");
    await timers.advance(1);
    expect(feed.getSnapshot().status).toBe("remote");
    expect(feed.getSnapshot().localError).toContain("within 3000 ms");
    expect(fetch.inFlight).toBe(0);
    feed.close();
  });

  test("goes REMOTE when the stream never opens", async () => {
    const { feed, timers, sources } = setup({ connectTimeoutMs: 4000 });
    await timers.advance(4000);
    expect(feed.getSnapshot().status).toBe("remote");
    expect(sources.open()).toHaveLength(0);
    feed.close();
  });

  test("polls Supabase every pollIntervalMs while REMOTE and not while LOCAL", async () => {
    const { feed, timers, remote, local, sources } = setup({ local: "down", pollIntervalMs: 30_000 });
    await settle();
    const polls = () => remote.calls.filter((c) => c.startsWith("events")).length;
    expect(polls()).toBe(1);
    remote.rows = [event(1), event(2)];
    await timers.advance(29_999 - 0);
    // Probes fail meanwhile; the poll has not come round yet.
    expect(polls()).toBe(1);
    await timers.advance(1);
    expect(polls()).toBe(2);
    expect(seqs(feed)).toEqual([1, 2]);
    expect(remote.calls.slice(-4)).toEqual([
      "events paper >0 200",
      "important paper 200",
      "health paper",
      "state paper",
    ]);

    local.answer = "up";
    await timers.advance(15_000); // next probe succeeds
    sources.last.open();
    expect(feed.getSnapshot().status).toBe("local");
    const before = polls();
    await timers.advance(120_000);
    expect(polls()).toBe(before);
    feed.close();
  });

  test("probes the local API with capped backoff: first within 2 s, then doubling to 15 s", async () => {
    const { feed, timers, fetch } = setup({ local: "down" });
    await settle();
    const probeTimes: number[] = [];
    const start = timers.now;
    const seen = fetch.calls.length;
    let last = seen;
    for (let i = 0; i < 7; i++) {
      // Step a second at a time and note when a probe goes out.
      for (let t = 0; t < 16; t++) {
        await timers.advance(1000);
        if (fetch.calls.length > last) {
          last = fetch.calls.length;
          probeTimes.push(timers.now - start);
          break;
        }
      }
    }
    const gaps = probeTimes.map((t, i) => t - (probeTimes[i - 1] ?? 0));
    expect(gaps).toEqual([1000, 2000, 4000, 8000, 15_000, 15_000, 15_000]);
    feed.close();
  });

  test("returns to LOCAL from the last seq seen and keeps every event exactly once", async () => {
    const { feed, timers, remote, local, sources } = setup({ head: 3 });
    await settle();
    const first = sources.last;
    expect(first.from).toBe(0);
    first.open();
    for (const s of [1, 2, 3]) first.send(event(s));
    // 4 and 5 were flushed but the stream had not delivered them before the kill.
    remote.rows = [1, 2, 3, 4, 5].map((s) => event(s));
    local.answer = "down";
    first.fail();
    await settle();
    expect(seqs(feed)).toEqual([1, 2, 3, 4, 5]);
    expect(feed.getSnapshot().status).toBe("remote");

    local.answer = "up";
    local.head = 7;
    await timers.advance(1000); // first probe
    const second = sources.last;
    expect(second).not.toBe(first);
    expect(second.from).toBe(5);
    expect(feed.getSnapshot().status).toBe("remote"); // not LOCAL until the stream is open
    second.open();
    for (const s of [6, 7]) second.send(event(s));
    expect(feed.getSnapshot().status).toBe("local");
    expect(seqs(feed)).toEqual([1, 2, 3, 4, 5, 6, 7]);
    expect(sources.open()).toEqual([second]);
    feed.close();
  });

  test("a failed reconnect keeps REMOTE and backs off further", async () => {
    const { feed, timers, local, sources } = setup({ local: "down" });
    await settle();
    local.answer = "up";
    await timers.advance(1000);
    sources.last.fail(); // the state answered but the stream did not open
    expect(feed.getSnapshot().status).toBe("remote");
    expect(timers.delays()).toContain(2000);
    feed.close();
  });

  test("flags a refused token (401) and keeps probing", async () => {
    const { feed, timers, fetch } = setup({ local: 401 });
    await settle();
    expect(feed.getSnapshot().unauthorized).toBe(true);
    expect(feed.getSnapshot().localError).toContain("401");
    const calls = fetch.calls.length;
    await timers.advance(1000);
    expect(fetch.calls.length).toBe(calls + 1);
    feed.close();
  });

  test("notifies subscribers once per frame however many events arrive", async () => {
    const { feed, sources, frames } = setup();
    let notified = 0;
    feed.subscribe(() => notified++);
    await settle();
    sources.last.open();
    frames.flush();
    notified = 0;
    for (let s = 1; s <= 1000; s++) sources.last.send(event(s));
    expect(notified).toBe(0);
    frames.flush();
    expect(notified).toBe(1);
    expect(seqs(feed)).toHaveLength(200);
    expect(feed.getSnapshot()).toBe(feed.getSnapshot()); // stable between changes
    feed.close();
  });

  test("uses Supabase Realtime while subscribed, and polling when the channel fails", async () => {
    const ok = setup({ local: "down", realtime: true });
    ok.remote.realtime = "ok";
    await settle();
    expect(ok.feed.getSnapshot().remote.via).toBe("realtime");
    ok.remote.pushers[0]!(event(4));
    expect(seqs(ok.feed)).toEqual([4]);
    ok.feed.close();
    expect(ok.remote.subscriptions).toBe(0);

    const failing = setup({ local: "down", realtime: true });
    await settle();
    expect(failing.feed.getSnapshot().remote.via).toBe("polling");
    expect(failing.feed.getSnapshot().remote.realtimeError).toContain("CHANNEL_ERROR");
    expect(failing.remote.subscriptions).toBe(0);
    failing.feed.close();
  });

  test("shows REMOTE without data when Supabase is not configured", async () => {
    const { feed } = setup({ local: "down", remote: null });
    await settle();
    const snap = feed.getSnapshot();
    expect(snap.status).toBe("remote");
    expect(snap.remote.configured).toBe(false);
    expect(snap.remote.error).toBe("Supabase is not configured");
    feed.close();
  });

  test("ignores events of the other mode from either source", async () => {
    const { feed, sources, remote } = setup({ mode: "live" });
    remote.rows = [event(1, "paper"), event(2, "live")];
    await settle();
    sources.last.open();
    sources.last.send(event(1, "paper"));
    sources.last.send(event(1, "live"));
    sources.last.fail();
    await settle();
    expect(feed.getSnapshot().events.map((e) => `${e.mode}:${e.seq}`)).toEqual(["live:1", "live:2"]);
    feed.close();
  });
});

describe("hung local link", () => {
  async function localWithHeartbeats(options: Parameters<typeof setup>[0] = {}) {
    const s = setup({ head: 5, ...options });
    await settle();
    s.sources.last.open();
    s.sources.last.heartbeat(5);
    return s;
  }

  test("heartbeats every 2 s keep it LOCAL; silence goes REMOTE 3.5 s after the last sign of life", async () => {
    const { feed, timers, sources, remote } = await localWithHeartbeats();
    const es = sources.last;
    for (let i = 0; i < 10; i++) {
      await timers.advance(2_000);
      es.heartbeat(5);
    }
    expect(feed.getSnapshot().status).toBe("local");
    const lastSign = timers.now;
    // The box hangs (SIGSTOP): no error, no data, nothing.
    await timers.advance(3_499);
    expect(feed.getSnapshot().status).toBe("local");
    await timers.advance(1);
    expect(timers.now - lastSign).toBe(3_500);
    const snap = feed.getSnapshot();
    expect(snap.status).toBe("remote");
    expect(snap.localError).toContain("the link is hung");
    expect(es.closed).toBe(true);
    expect(remote.calls.some((c) => c.startsWith("events"))).toBe(true);
    feed.close();
  });

  test("events count as signs of life as much as heartbeats", async () => {
    const { feed, timers, sources } = await localWithHeartbeats();
    for (let i = 6; i < 20; i++) {
      await timers.advance(1_000);
      sources.last.send(event(i));
    }
    expect(feed.getSnapshot().status).toBe("local");
    feed.close();
  });

  test("a blip under a second (a heartbeat late) does not flap the badge", async () => {
    const { feed, timers, sources, frames } = await localWithHeartbeats();
    const statuses: string[] = [];
    feed.subscribe(() => statuses.push(feed.getSnapshot().status));
    await timers.advance(2_000);
    sources.last.heartbeat(5);
    await timers.advance(2_900); // due at 2 s, 900 ms late
    sources.last.heartbeat(5);
    await timers.advance(2_000);
    sources.last.heartbeat(5);
    frames.flush();
    expect(feed.getSnapshot().status).toBe("local");
    expect(statuses.filter((s) => s !== "local")).toEqual([]);
    feed.close();
  });

  test("back to LOCAL when the link answers again: the next probe reconnects from the last seq seen", async () => {
    const { feed, timers, sources, local } = await localWithHeartbeats();
    sources.last.send(event(6));
    local.answer = "hang"; // SIGSTOP: connections are accepted, nothing is answered
    await timers.advance(3_500);
    expect(feed.getSnapshot().status).toBe("remote");
    await timers.advance(4_000); // a probe went out at 1 s and timed out at 3 s
    expect(feed.getSnapshot().status).toBe("remote");
    local.answer = "up"; // SIGCONT
    local.head = 9;
    const before = sources.all.length;
    const sigcontAt = timers.now;
    while (sources.all.length === before && timers.now - sigcontAt < 15_000) await timers.advance(100);
    expect(sources.all.length).toBe(before + 1); // within the probe backoff (first 1 s, doubling, cap 15 s)
    expect(sources.last.from).toBe(6);
    sources.last.open();
    expect(feed.getSnapshot().status).toBe("local");
    feed.close();
  });

  test("without heartbeats (an older server) only a state probe that times out while the stream is silent means hung", async () => {
    const s = setup({ head: 5, stateRefreshMs: 5_000, probeTimeoutMs: 3_000 });
    await settle();
    s.sources.last.open();
    await s.timers.advance(20_000); // quiet market, probes answer
    expect(s.feed.getSnapshot().status).toBe("local");
    s.local.answer = "hang";
    await s.timers.advance(5_000 + 2_999);
    expect(s.feed.getSnapshot().status).toBe("local");
    await s.timers.advance(1);
    expect(s.feed.getSnapshot().status).toBe("remote");
    expect(s.feed.getSnapshot().localError).toContain("did not answer within 3000 ms");
    s.feed.close();
  });

  test("a slow state probe while the stream is alive is not a hang", async () => {
    const s = await localWithHeartbeats({ stateRefreshMs: 5_000, probeTimeoutMs: 3_000 });
    s.local.answer = "hang"; // e.g. a busy /local/state; the stream keeps flowing
    for (let i = 0; i < 10; i++) {
      await s.timers.advance(1_500);
      s.sources.last.heartbeat(5);
    }
    expect(s.feed.getSnapshot().status).toBe("local");
    s.feed.close();
  });

  test("a server with a longer heartbeat interval gets a longer bound (1.5 intervals + 0.5 s)", async () => {
    const s = setup({ head: 5, stateRefreshMs: 600_000 }); // only the stream speaks
    await settle();
    s.sources.last.open();
    s.sources.last.heartbeat(5, 10_000);
    await s.timers.advance(15_499);
    expect(s.feed.getSnapshot().status).toBe("local");
    await s.timers.advance(1);
    expect(s.feed.getSnapshot().status).toBe("remote");
    s.feed.close();
  });
});

describe("event: reset", () => {
  test("drops what the feed holds and resyncs from the newest state and events", async () => {
    const s = setup({ head: 50, maxEvents: 10 });
    await settle();
    s.sources.last.open();
    for (let i = 41; i <= 50; i++) s.sources.last.send(event(i));
    expect(s.feed.getSnapshot().lastSeq).toBe(50);
    // The box's database was restored from a backup: its newest seq is 20 now.
    s.local.head = 20;
    s.sources.last.emit("reset", { newest_seq: 20, requested_seq: 50 }, 20);
    const old = s.sources.all.at(-1)!;
    await settle();
    expect(s.feed.getSnapshot()).toMatchObject({ events: [], lastSeq: 0 });
    expect(s.feed.getSnapshot().localError).toContain("newest 20");
    expect(old.closed).toBe(true);
    const fresh = s.sources.last;
    expect(fresh).not.toBe(old);
    expect(fresh.from).toBe(10); // the newest window: 20 - maxEvents
    fresh.open();
    for (let i = 11; i <= 21; i++) fresh.send(event(i, "paper", { body: `restored ${i}` }));
    const snap = s.feed.getSnapshot();
    expect(snap.status).toBe("local");
    expect(snap.events.map((e) => e.seq)).toEqual([12, 13, 14, 15, 16, 17, 18, 19, 20, 21]);
    expect(snap.events.every((e) => e.body.startsWith("restored"))).toBe(true);
    s.feed.close();
  });
});

describe("important events on load", () => {
  /** A local API holding `stored`: GET /local/state, and GET /local/events with the filters the feed sends. */
  function localApi(stored: StoredEvent[]) {
    return new FakeFetch((url) => {
      const q = url.searchParams;
      if (url.pathname === "/local/state") return localStateResponse("paper", stored.at(-1)?.seq ?? 0);
      if (url.pathname !== "/local/events") return new Response("not found", { status: 404 });
      const subtypes = q.get("subtype")?.split(",");
      const least = q.get("severity");
      const atLeast = least === null ? null : SEVERITIES.slice(SEVERITIES.indexOf(least as Severity));
      const before = Number(q.get("before_seq") ?? Number.MAX_SAFE_INTEGER);
      const hits = stored.filter(
        (e) =>
          e.mode === q.get("mode") &&
          e.seq < before &&
          (!subtypes || subtypes.includes(e.subtype)) &&
          (!atLeast || atLeast.includes(e.severity)),
      );
      return Response.json(hits.slice(-Number(q.get("limit") ?? 50)));
    });
  }

  test("a fill older than the replayed window is in `important` once the page opens, with errors, nothing after the window's start", async () => {
    const stored = [
      event(1, "paper", { subtype: "BUY_FILLED" }),
      event(2, "paper", { subtype: "BROKER_DOWN", severity: "error" }),
      ...Array.from({ length: 1500 }, (_, i) => event(3 + i, "paper", { severity: "debug" })),
    ];
    const fetch = localApi(stored);
    const { feed, sources } = setup({ maxEvents: 200, fetch: fetch.fetch });
    await settle();
    expect(sources.last.from).toBe(1502 - 200);
    const important = fetch.calls.filter((c) => c.includes("/local/events"));
    expect(important.map((c) => new URL(c).searchParams.get("before_seq"))).toEqual(["1303", "1303"]);
    expect(important.map((c) => new URL(c).searchParams.get("limit"))).toEqual(["200", "200"]);
    sources.last.open();
    for (const e of stored.slice(1302)) sources.last.send(e);
    const snap = feed.getSnapshot();
    expect(snap.important.map((e) => `${e.seq} ${e.subtype}`)).toEqual(["1 BUY_FILLED", "2 BROKER_DOWN"]);
    expect(snap.events.map((e) => e.seq)).toEqual(stored.slice(1302).map((e) => e.seq));
    expect(snap.lastSeq).toBe(1502);
    feed.close();
  });

  test("asked again on every reconnect; a service without the filters (400) leaves the stream as it is", async () => {
    let filters = false;
    const stored = [event(1, "paper", { subtype: "KILL_SWITCH", severity: "critical" }), event(2), event(3)];
    const api = localApi(stored);
    const fetch = new FakeFetch((url) =>
      url.pathname === "/local/events" && !filters
        ? Response.json({ error: { code: "invalid_request" } }, { status: 400 })
        : api.route(url),
    );
    const { feed, sources, timers } = setup({ maxEvents: 2, fetch: fetch.fetch });
    await settle();
    sources.last.open();
    sources.last.send(stored[2]!);
    expect(feed.getSnapshot()).toMatchObject({ status: "local", important: [], lastSeq: 3 });
    filters = true;
    sources.last.fail();
    await timers.advance(1_000);
    await settle();
    expect(feed.getSnapshot().important.map((e) => e.seq)).toEqual([1]);
    expect(fetch.calls.filter((c) => c.includes("/local/events"))).toHaveLength(4);
    feed.close();
  });
});

describe("important events on load, when the box does not answer", () => {
  test("the fetch is aborted after probeTimeoutMs, and at once when the link drops, never left hanging", async () => {
    const fetch = new FakeFetch((url) => (url.pathname === "/local/state" ? localStateResponse("paper", 500) : "hang"));
    const { feed, sources, timers } = setup({ maxEvents: 200, probeTimeoutMs: 3_000, fetch: fetch.fetch });
    await settle();
    sources.last.open();
    expect(fetch.inFlight).toBe(2);
    await timers.advance(2_900);
    expect(fetch.inFlight).toBe(2);
    await timers.advance(200);
    expect(fetch.inFlight).toBe(0);
    expect(feed.getSnapshot().status).toBe("local");
    // Reconnect: the new fetch hangs too, and goes with the link.
    sources.last.fail();
    await timers.advance(1_000);
    await settle();
    expect(fetch.inFlight).toBe(2);
    sources.last.fail();
    expect(fetch.inFlight).toBe(0);
    feed.close();
  });
});

describe("LiveFeed.close()", () => {
  const phases = {
    connecting: async () => {
      const s = setup({ local: "hang" });
      await settle();
      return s;
    },
    local: async () => {
      const s = setup();
      await settle();
      s.sources.last.open();
      return s;
    },
    "remote, probe pending": async () => {
      const s = setup({ local: "down", realtime: true });
      s.remote.realtime = "ok";
      await settle();
      return s;
    },
    "remote, probe in flight": async () => {
      const s = setup({ local: "down" });
      await settle();
      s.local.answer = "hang";
      await s.timers.advance(1000);
      return s;
    },
  };
  for (const [phase, make] of Object.entries(phases)) {
    test(`leaves no EventSource, timer, fetch or subscription behind (${phase})`, async () => {
      const { feed, timers, sources, fetch, remote, frames } = await make();
      let notified = 0;
      feed.subscribe(() => notified++);
      feed.close();
      expect(sources.open()).toHaveLength(0);
      expect(timers.count()).toBe(0);
      expect(fetch.inFlight).toBe(0);
      expect(remote.subscriptions).toBe(0);
      expect(frames.queued).toHaveLength(0);
      expect(feed.getSnapshot().status).toBe("closed");
      // Nothing comes back to life afterwards.
      const calls = fetch.calls.length + remote.calls.length;
      await timers.advance(600_000);
      expect(fetch.calls.length + remote.calls.length).toBe(calls);
      expect(sources.open()).toHaveLength(0);
      expect(notified).toBe(0);
    });
  }

  test("a mode switch closes the old feed and the new one shows only its mode", async () => {
    const paper = setup({ mode: "paper" });
    await settle();
    paper.sources.last.open();
    paper.sources.last.send(event(1, "paper"));
    paper.feed.close();
    const live = setup({ mode: "live" });
    await settle();
    live.sources.last.open();
    live.sources.last.send(event(1, "live"));
    expect(paper.sources.open()).toHaveLength(0);
    expect(paper.timers.count()).toBe(0);
    expect(live.sources.last.url).toContain("mode=live");
    expect(live.feed.getSnapshot().events.map((e) => e.mode)).toEqual(["live"]);
    live.feed.close();
  });
});
