import { describe, expect, test } from "bun:test";
import { createFeedStore } from "../../src/client/feed-store.ts";
import type { RemoteStatus } from "../../src/client/types.ts";
import { event, FakeFrames } from "./fakes.ts";

const remoteStatus = (): RemoteStatus => ({
  configured: false,
  via: "polling",
  pollIntervalMs: 30_000,
  lastPollAt: null,
  error: null,
  realtimeError: null,
});

function setup(maxEvents = 3) {
  const frames = new FakeFrames();
  const feed = createFeedStore({ mode: "paper", maxEvents, remote: remoteStatus(), schedule: frames.schedule });
  return { feed, frames };
}

describe("createFeedStore()", () => {
  test("keeps fills, kill switches and errors apart, so a flood of ticks does not push them out of the window", () => {
    const { feed } = setup(3);
    const fill = event(2, "paper", { subtype: "BUY_FILLED" });
    const kill = event(3, "paper", { subtype: "KILL_SWITCH", severity: "critical" });
    const error = event(4, "paper", { subtype: "REJECTED", severity: "error" });
    feed.addEvents([event(1), fill, kill, error, event(9, "live", { subtype: "SELL_FILLED" })]);
    feed.addEvents(Array.from({ length: 50 }, (_, i) => event(10 + i, "paper", { severity: "debug" })));
    const s = feed.snapshot();
    expect(s.events.map((e) => e.seq)).toEqual([57, 58, 59]);
    expect(s.important.map((e) => e.seq)).toEqual([2, 3, 4]);
    feed.addEvents([event(60, "paper", { subtype: "SELL_FILLED" }), event(61, "paper", { severity: "critical" })]);
    expect(feed.snapshot().important.map((e) => e.seq)).toEqual([4, 60, 61]);
    feed.clearEvents();
    feed.changed();
    expect(feed.snapshot()).toMatchObject({ events: [], important: [], lastSeq: 0 });
  });

  test("keeps the newest maxEvents of the mode by seq, once each, and the highest seq seen", () => {
    const { feed } = setup(3);
    feed.addEvents([event(5), event(2), event(9, "live")]);
    feed.addEvents([event(4), event(5), event(7)]);
    const s = feed.snapshot();
    expect(s.events.map((e) => e.seq)).toEqual([4, 5, 7]);
    expect(s.lastSeq).toBe(7);
  });

  test("gives the same snapshot until something changes, then a new one", () => {
    const { feed } = setup();
    const first = feed.snapshot();
    expect(feed.snapshot()).toBe(first);
    feed.data.localError = "the local stream closed";
    feed.changed();
    const second = feed.snapshot();
    expect(second).not.toBe(first);
    expect(second.localError).toBe("the local stream closed");
    expect(first.localError).toBeNull();
  });

  test("runs each listener once per frame however many changes came in it", () => {
    const { feed, frames } = setup(1000);
    let calls = 0;
    feed.subscribe(() => calls++);
    for (let i = 1; i <= 500; i++) feed.addEvents([event(i)]);
    expect(calls).toBe(0);
    frames.flush();
    expect(calls).toBe(1);
    frames.flush();
    expect(calls).toBe(1);
  });

  test("clearEvents() forgets the events and the seq reached", () => {
    const { feed } = setup();
    feed.addEvents([event(8)]);
    feed.clearEvents();
    feed.changed();
    expect(feed.snapshot().events).toEqual([]);
    expect(feed.snapshot().lastSeq).toBe(0);
  });

  test("close() runs the teardown once, cancels the pending frame and reports closed", () => {
    const { feed, frames } = setup();
    let calls = 0;
    let teardowns = 0;
    feed.subscribe(() => calls++);
    feed.addEvents([event(1)]);
    feed.close(() => teardowns++);
    feed.close(() => teardowns++);
    frames.flush();
    feed.addEvents([event(2)]);
    frames.flush();
    expect({ calls, teardowns, closed: feed.closed, status: feed.snapshot().status }).toEqual({
      calls: 0,
      teardowns: 1,
      closed: true,
      status: "closed",
    });
  });
});
