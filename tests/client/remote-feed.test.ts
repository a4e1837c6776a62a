import { describe, expect, test } from "bun:test";
import { createFeedStore } from "../../src/client/feed-store.ts";
import { createRemoteFeed } from "../../src/client/remote-feed.ts";
import type { RemoteReader } from "../../src/client/remote.ts";
import { event, FakeFrames, FakeRemote, FakeTimers, settle } from "./fakes.ts";

function setup(options: { remote?: RemoteReader | null; realtime?: boolean } = {}) {
  const timers = new FakeTimers();
  const reader = options.remote === undefined ? new FakeRemote() : options.remote;
  const feed = createFeedStore({
    mode: "paper",
    maxEvents: 50,
    schedule: new FakeFrames().schedule,
    remote: {
      configured: reader !== null,
      via: "polling",
      pollIntervalMs: 1_000,
      lastPollAt: null,
      error: null,
      realtimeError: null,
    },
  });
  const remote = createRemoteFeed({
    mode: "paper",
    remote: reader,
    realtime: options.realtime ?? false,
    pollIntervalMs: 1_000,
    maxEvents: 50,
    feed,
    timers,
    now: () => timers.now,
  });
  return { timers, reader, feed, remote };
}

describe("createRemoteFeed()", () => {
  test("asks for the important events apart, so a fill older than the newest window of ticks still shows", async () => {
    const { reader, feed, remote } = setup();
    const fake = reader as FakeRemote;
    fake.rows = [
      event(1, "paper", { subtype: "BUY_FILLED" }),
      event(2, "paper", { subtype: "KILL_SWITCH", severity: "critical" }),
      ...Array.from({ length: 120 }, (_, i) => event(3 + i, "paper", { severity: "debug" })),
    ];
    remote.start();
    await settle();
    const s = feed.snapshot();
    expect(s.events).toHaveLength(50);
    expect(s.events[0]!.seq).toBe(73);
    expect(s.important.map((e) => e.seq)).toEqual([1, 2]);
    expect(fake.calls).toContain("important paper 50");
  });

  test("polls at once, then every pollIntervalMs, asking only for events after the seq the feed has", async () => {
    const { timers, reader, feed, remote } = setup();
    const fake = reader as FakeRemote;
    fake.rows = [event(1), event(2)];
    remote.start();
    await settle();
    expect(feed.snapshot().lastSeq).toBe(2);
    fake.rows.push(event(3));
    await timers.advance(1_000);
    expect(fake.calls.filter((c) => c.startsWith("events"))).toEqual(["events paper >0 50", "events paper >2 50"]);
    expect(feed.snapshot().remote.lastPollAt).toBe(timers.now);
  });

  test("start() while running starts no second loop; stop() ends it and a poll in flight is ignored", async () => {
    const { timers, reader, feed, remote } = setup();
    const fake = reader as FakeRemote;
    remote.start();
    remote.start();
    fake.rows = [event(9)];
    remote.stop();
    await timers.advance(5_000);
    expect(fake.calls.filter((c) => c.startsWith("events"))).toHaveLength(1);
    expect(feed.snapshot().events).toEqual([]);
    expect(timers.count()).toBe(0);
  });

  test("a failed read is shown and the next poll still comes", async () => {
    const { timers, feed, remote } = setup({
      remote: {
        events: () => Promise.reject(new Error("PostgREST answered 503")),
        health: async () => null,
        state: async () => null,
      },
    });
    remote.start();
    await settle();
    expect(feed.snapshot().remote.error).toBe("PostgREST answered 503");
    expect(timers.delays()).toEqual([1_000]);
  });

  test("Realtime: live while subscribed; a failed channel is unsubscribed and polling goes on", async () => {
    const ok = setup({ realtime: true });
    (ok.reader as FakeRemote).realtime = "ok";
    ok.remote.start();
    await settle();
    expect(ok.feed.snapshot().remote.via).toBe("realtime");
    // stop() changes no snapshot by itself: the local link that stops it does, as it goes LOCAL.
    ok.remote.stop();
    expect({ via: ok.feed.data.remote.via, subscriptions: (ok.reader as FakeRemote).subscriptions }).toEqual({
      via: "polling",
      subscriptions: 0,
    });

    const failing = setup({ realtime: true });
    failing.remote.start();
    await settle();
    expect(failing.feed.snapshot().remote).toMatchObject({
      via: "polling",
      realtimeError: "Realtime unavailable (CHANNEL_ERROR); polling",
    });
    expect((failing.reader as FakeRemote).subscriptions).toBe(0);
    expect(failing.timers.delays()).toEqual([1_000]);
  });

  test("without Supabase it says so and starts nothing", () => {
    const { timers, feed, remote } = setup({ remote: null });
    remote.start();
    expect(feed.data.remote.error).toBe("Supabase is not configured");
    expect(timers.count()).toBe(0);
  });
});
