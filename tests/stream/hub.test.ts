import { expect, test } from "bun:test";
import { createHub } from "../../src/stream/hub.ts";
import type { StoredEvent } from "../../src/store/store.ts";

const e = (mode: "paper" | "live", seq: number) => ({ mode, seq }) as StoredEvent;

test("publish() delivers each mode's events, in order, to that mode's subscribers only", () => {
  const hub = createHub();
  const live: number[][] = [];
  const paper: number[][] = [];
  hub.subscribe("live", (events) => live.push(events.map((x) => x.seq)));
  hub.subscribe("paper", (events) => paper.push(events.map((x) => x.seq)));
  hub.publish([e("live", 1), e("paper", 1), e("live", 2)]);
  hub.publish([e("paper", 2)]);
  expect(live).toEqual([[1, 2]]);
  expect(paper).toEqual([[1], [2]]);
});

test("unsubscribe stops delivery and updates subscriberCount at once; calling it twice is harmless", () => {
  const hub = createHub();
  const seen: number[] = [];
  const off = hub.subscribe("live", (events) => seen.push(...events.map((x) => x.seq)));
  hub.subscribe("paper", () => {});
  expect([hub.subscriberCount(), hub.subscriberCount("live"), hub.subscriberCount("paper")]).toEqual([2, 1, 1]);
  off();
  off();
  hub.publish([e("live", 1)]);
  expect(seen).toEqual([]);
  expect([hub.subscriberCount(), hub.subscriberCount("live")]).toEqual([1, 0]);
});

test("a throwing subscriber is reported and does not stop the others", () => {
  const errors: unknown[] = [];
  const hub = createHub({ onSubscriberError: (error) => errors.push(error) });
  const seen: number[] = [];
  hub.subscribe("live", () => {
    throw new Error("broken stream");
  });
  hub.subscribe("live", (events) => seen.push(...events.map((x) => x.seq)));
  hub.publish([e("live", 1)]);
  expect(seen).toEqual([1]);
  expect((errors[0] as Error).message).toBe("broken stream");
});

test("a subscriber may unsubscribe itself or another while being called", () => {
  const hub = createHub();
  const calls: string[] = [];
  let offB: () => void = () => {};
  const offA = hub.subscribe("live", () => {
    calls.push("a");
    offA();
    offB();
  });
  offB = hub.subscribe("live", () => calls.push("b"));
  hub.publish([e("live", 1)]);
  hub.publish([e("live", 2)]);
  expect(calls.filter((c) => c === "a")).toEqual(["a"]);
  expect(hub.subscriberCount()).toBe(0);
});
