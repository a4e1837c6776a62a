import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { Window } from "happy-dom";
import { act, createElement } from "react";
import { createRoot, type Root } from "react-dom/client";
import type { Mode } from "../../src/client/types.ts";
import { type LocalLive, useLocalLive, type UseLocalLiveOptions } from "../../src/client/use-local-live.ts";
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

// React DOM needs a window and a document; happy-dom provides them for this file only.
const g = globalThis as Record<string, unknown>;
let win: Window;
beforeAll(() => {
  win = new Window();
  g.window = win;
  g.document = win.document;
  g.IS_REACT_ACT_ENVIRONMENT = true;
});
afterAll(async () => {
  delete g.window;
  delete g.document;
  delete g.IS_REACT_ACT_ENVIRONMENT;
  await win.happyDOM.close();
});

function harness(initialMode: Mode) {
  const timers = new FakeTimers();
  const sources = new EventSources();
  const frames = new FakeFrames();
  const remote = new FakeRemote();
  const fetch = new FakeFetch((url) => {
    const mode = (url.searchParams.get("mode") ?? "paper") as Mode;
    return localStateResponse(mode, 0, {
      last_flush_ts: new Date(timers.now - 5000).toISOString(),
      last_flush_status: "ok",
    });
  });
  const options: UseLocalLiveOptions = {
    localApiUrl: "http://box:8765",
    remote,
    eventSource: sources.factory,
    fetch: fetch.fetch,
    timers,
    now: () => timers.now,
    schedule: frames.schedule,
  };
  const renders: LocalLive[] = [];
  function Probe({ mode }: { mode: Mode }) {
    renders.push(useLocalLive(mode, options));
    return null;
  }
  const container = win.document.createElement("div");
  let root!: Root;
  const render = async (mode: Mode) => {
    await act(async () => root.render(createElement(Probe, { mode })));
    await act(settle);
  };
  return {
    timers,
    sources,
    frames,
    remote,
    renders,
    latest: () => renders.at(-1)!,
    async mount() {
      root = createRoot(container as unknown as Element);
      await render(initialMode);
    },
    render,
    async frame() {
      await act(async () => frames.flush());
    },
    async advance(ms: number) {
      await act(() => timers.advance(ms));
    },
    async unmount() {
      await act(async () => root.unmount());
    },
  };
}

describe("useLocalLive()", () => {
  test("returns the seed's { isLocal, events, lastSeq } and follows the feed to LOCAL LIVE", async () => {
    const h = harness("paper");
    await h.mount();
    expect(h.renders[0]).toMatchObject({ isLocal: false, events: [], lastSeq: 0, status: "connecting" });
    h.sources.last.open();
    h.sources.last.send(event(1));
    h.sources.last.send(event(2));
    await h.frame();
    expect(h.latest()).toMatchObject({ isLocal: true, status: "local", lastSeq: 2 });
    expect(h.latest().events.map((e) => e.seq)).toEqual([1, 2]);
    expect(h.latest().state?.cash).toBe(1000);
    await h.unmount();
  });

  test("ticks syncedAgoS every second from the last flush time", async () => {
    const h = harness("paper");
    await h.mount();
    h.sources.last.open();
    await h.frame();
    expect(h.latest().syncedAgoS).toBe(5);
    await h.advance(1000);
    expect(h.latest().syncedAgoS).toBe(6);
    await h.advance(3000);
    expect(h.latest().syncedAgoS).toBe(9);
    await h.unmount();
  });

  test("a mode switch closes the old feed and never renders the old mode's events", async () => {
    const h = harness("paper");
    await h.mount();
    const paperStream = h.sources.last;
    paperStream.open();
    paperStream.send(event(1, "paper"));
    paperStream.send(event(2, "paper"));
    await h.frame();
    expect(h.latest().events).toHaveLength(2);
    const from = h.renders.length;

    await h.render("live");
    expect(paperStream.closed).toBe(true);
    const liveStream = h.sources.last;
    expect(liveStream.url).toContain("mode=live");
    liveStream.open();
    liveStream.send(event(1, "live"));
    await h.frame();
    const after = h.renders.slice(from);
    expect(after.every((r) => r.mode === "live" && r.events.every((e) => e.mode === "live"))).toBe(true);
    expect(h.latest().events.map((e) => `${e.mode}:${e.seq}`)).toEqual(["live:1"]);
    expect(h.sources.open()).toEqual([liveStream]);
    await h.unmount();
  });

  test("unmounting leaves no EventSource, timer or subscription behind", async () => {
    const h = harness("paper");
    await h.mount();
    h.sources.last.fail(); // REMOTE: probe timer and poll timer pending
    await act(settle);
    expect(h.timers.count()).toBeGreaterThan(0);
    await h.unmount();
    expect(h.sources.open()).toHaveLength(0);
    expect(h.timers.count()).toBe(0);
    expect(h.frames.queued).toHaveLength(0);
    expect(h.remote.subscriptions).toBe(0);
  });
});
