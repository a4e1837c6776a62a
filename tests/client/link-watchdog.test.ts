import { describe, expect, test } from "bun:test";
import { createLinkWatchdog } from "../../src/client/link-watchdog.ts";
import { FakeTimers } from "./fakes.ts";

function setup(silenceMs = 3_500) {
  const timers = new FakeTimers();
  // The wall clock may run ahead of the timers: a frozen page's timers fire late.
  const clock = { behind: 0 };
  const silences: { at: number; ms: number }[] = [];
  const dog = createLinkWatchdog({
    timers,
    now: () => timers.now + clock.behind,
    silenceMs,
    onSilent: (ms) => silences.push({ at: timers.now, ms }),
  });
  return { timers, dog, silences, start: timers.now, clock };
}

describe("createLinkWatchdog()", () => {
  test("does nothing until armed", async () => {
    const { timers, silences } = setup();
    await timers.advance(60_000);
    expect(silences).toEqual([]);
    expect(timers.count()).toBe(0);
  });

  test("reports a link silent for silenceMs, once, at that moment", async () => {
    const { timers, dog, silences, start } = setup();
    dog.arm();
    await timers.advance(3_499);
    expect(silences).toEqual([]);
    await timers.advance(1);
    expect(silences).toEqual([{ at: start + 3_500, ms: 3_500 }]);
    expect(dog.armed).toBe(false);
    await timers.advance(60_000);
    expect(silences).toHaveLength(1);
    expect(timers.count()).toBe(0);
  });

  test("heartbeats every 2 s keep it quiet, however long; the hang is reported 3.5 s after the last one", async () => {
    const { timers, dog, silences, start } = setup();
    dog.arm();
    for (let i = 0; i < 30; i++) {
      await timers.advance(2_000);
      dog.alive();
    }
    expect(silences).toEqual([]);
    const last = timers.now;
    await timers.advance(10_000);
    expect(silences).toEqual([{ at: last + 3_500, ms: 3_500 }]);
    expect(last - start).toBe(60_000);
  });

  test("a blip shorter than the bound (one missed heartbeat) is not a hang", async () => {
    const { timers, dog, silences } = setup();
    dog.arm();
    await timers.advance(2_000);
    dog.alive();
    await timers.advance(3_400); // a heartbeat missed, the next one late
    dog.alive();
    await timers.advance(2_000);
    dog.alive();
    expect(silences).toEqual([]);
  });

  test("many messages cost one timer, not one each", async () => {
    const { timers, dog } = setup();
    dog.arm();
    for (let i = 0; i < 1_000; i++) dog.alive();
    expect(timers.count()).toBe(1);
  });

  test("a check that fires long after it was due (a frozen tab) looks again before it decides", async () => {
    const { timers, dog, silences, clock } = setup();
    dog.arm();
    // The page was frozen for 10 s: the timer runs 10 s late, before the queued data is handled.
    clock.behind = 10_000;
    await timers.advance(3_500);
    expect(silences).toEqual([]);
    dog.alive(); // the queued heartbeat, handled right after
    await timers.advance(250);
    expect(silences).toEqual([]);
    await timers.advance(3_500);
    expect(silences).toHaveLength(1);
  });

  test("a larger bound given while armed applies to the running check", async () => {
    const { timers, dog, silences, start } = setup(1_000);
    dog.arm();
    dog.arm(5_000);
    await timers.advance(4_999);
    expect(silences).toEqual([]);
    await timers.advance(1);
    expect(silences).toEqual([{ at: start + 5_000, ms: 5_000 }]);
  });

  test("stop() ends the watch and leaves no timer; arm() starts afresh", async () => {
    const { timers, dog, silences } = setup();
    dog.arm();
    dog.stop();
    expect(timers.count()).toBe(0);
    await timers.advance(10_000);
    expect(silences).toEqual([]);
    dog.arm();
    await timers.advance(3_500);
    expect(silences).toHaveLength(1);
  });
});
