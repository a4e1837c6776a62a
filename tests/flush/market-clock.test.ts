import { describe, expect, test } from "bun:test";
import { manualClock } from "../../src/lib/clock.ts";
import {
  createMarketClock,
  dayKind,
  marketSession,
  newYorkToEpoch,
  newYorkWallClock,
} from "../../src/flush/market-clock.ts";

const at = (iso: string) => Date.parse(iso);
const iso = (ms: number) => new Date(ms).toISOString();

describe("newYorkWallClock()", () => {
  test("reads New York time across the spring-forward gap on 2026-03-08", () => {
    // 01:59:59 EST is followed by 03:00:00 EDT.
    expect(newYorkWallClock(at("2026-03-08T06:59:59Z"))).toMatchObject({
      day: 8,
      hour: 1,
      minute: 59,
      second: 59,
      weekday: 0,
    });
    expect(newYorkWallClock(at("2026-03-08T07:00:00Z"))).toMatchObject({ day: 8, hour: 3, minute: 0 });
  });

  test("reads New York time across the fall-back repeat on 2026-11-01", () => {
    expect(newYorkWallClock(at("2026-11-01T05:30:00Z"))).toMatchObject({ hour: 1, minute: 30 });
    expect(newYorkWallClock(at("2026-11-01T06:30:00Z"))).toMatchObject({ hour: 1, minute: 30 });
    expect(newYorkWallClock(at("2026-11-01T07:00:00Z"))).toMatchObject({ hour: 2, minute: 0 });
  });

  test("prints midnight as hour 0, never 24", () => {
    expect(newYorkWallClock(at("2026-06-02T04:00:00Z"))).toMatchObject({
      month: 6,
      day: 2,
      hour: 0,
      minute: 0,
      weekday: 2,
    });
    expect(newYorkWallClock(at("2026-06-02T03:59:59Z"))).toMatchObject({ month: 6, day: 1, hour: 23, minute: 59 });
  });
});

describe("newYorkToEpoch()", () => {
  test("uses the offset in force on that date (EST vs EDT)", () => {
    expect(iso(newYorkToEpoch(2026, 3, 6, 570))).toBe("2026-03-06T14:30:00.000Z");
    expect(iso(newYorkToEpoch(2026, 3, 9, 570))).toBe("2026-03-09T13:30:00.000Z");
    expect(iso(newYorkToEpoch(2026, 10, 30, 960))).toBe("2026-10-30T20:00:00.000Z");
    expect(iso(newYorkToEpoch(2026, 11, 2, 960))).toBe("2026-11-02T21:00:00.000Z");
  });
});

describe("dayKind()", () => {
  test("classifies observed holidays, early closes, weekends and ordinary days", () => {
    expect(dayKind(2026, 7, 3)).toBe("holiday"); // July 4 is a Saturday
    expect(dayKind(2026, 7, 2)).toBe("trading");
    expect(dayKind(2027, 6, 18)).toBe("holiday"); // Juneteenth on a Saturday
    expect(dayKind(2027, 7, 5)).toBe("holiday"); // July 4 on a Sunday
    expect(dayKind(2027, 12, 24)).toBe("holiday"); // Christmas on a Saturday
    expect(dayKind(2027, 12, 23)).toBe("trading");
    expect(dayKind(2027, 12, 31)).toBe("trading"); // New Year 2028 falls on a Saturday: not observed
    expect(dayKind(2026, 4, 3)).toBe("holiday"); // Good Friday
    expect(dayKind(2027, 3, 26)).toBe("holiday");
    expect(dayKind(2026, 11, 27)).toBe("early_close");
    expect(dayKind(2026, 12, 24)).toBe("early_close");
    expect(dayKind(2027, 11, 26)).toBe("early_close");
    expect(dayKind(2026, 3, 7)).toBe("weekend");
    expect(dayKind(2028, 1, 17)).toBe("holiday"); // MLK Day 2028: computed, no table to run out
  });
});

describe("marketSession()", () => {
  test("opens at 09:30 and closes at 16:00 New York time", () => {
    expect(marketSession(at("2026-06-02T13:29:59Z"))).toMatchObject({
      open: false,
      day: "trading",
      nextTransition: at("2026-06-02T13:30:00Z"),
    });
    expect(marketSession(at("2026-06-02T13:30:00Z"))).toMatchObject({
      open: true,
      nextTransition: at("2026-06-02T20:00:00Z"),
    });
    expect(marketSession(at("2026-06-02T19:59:59Z")).open).toBe(true);
    expect(marketSession(at("2026-06-02T20:00:00Z"))).toMatchObject({
      open: false,
      nextTransition: at("2026-06-03T13:30:00Z"),
    });
  });

  test("Friday's close points at Monday's open across a DST change (2026-03-06 → 03-09)", () => {
    const s = marketSession(at("2026-03-06T21:00:00Z"));
    expect(s.open).toBe(false);
    expect(iso(s.nextTransition)).toBe("2026-03-09T13:30:00.000Z"); // EDT by Monday
    expect(marketSession(at("2026-03-08T07:30:00Z"))).toMatchObject({ open: false, day: "weekend" });
    expect(marketSession(at("2026-03-09T13:30:00Z")).open).toBe(true);
    expect(marketSession(at("2026-03-09T14:29:00Z")).open).toBe(true); // would be 09:29 under a stale EST offset
  });

  test("the fall-back week keeps 09:30 local (2026-10-30 EDT, 2026-11-02 EST)", () => {
    expect(marketSession(at("2026-10-30T13:30:00Z")).open).toBe(true);
    const fri = marketSession(at("2026-10-30T20:00:00Z"));
    expect(iso(fri.nextTransition)).toBe("2026-11-02T14:30:00.000Z");
    expect(marketSession(at("2026-11-01T06:30:00Z")).open).toBe(false); // the repeated 01:30 on Sunday
    expect(marketSession(at("2026-11-02T14:29:59Z")).open).toBe(false);
    expect(marketSession(at("2026-11-02T14:30:00Z")).open).toBe(true);
  });

  test("stays closed on a holiday and skips it when finding the next open", () => {
    // Thanksgiving 2026 (Thu 26) then the Friday early close.
    const wed = marketSession(at("2026-11-25T21:00:00Z"));
    expect(iso(wed.nextTransition)).toBe("2026-11-27T14:30:00.000Z");
    expect(marketSession(at("2026-11-26T16:00:00Z"))).toMatchObject({ open: false, day: "holiday" });
    // Long weekend: Fri Jul 3 2026 observed holiday → opens Mon Jul 6.
    expect(iso(marketSession(at("2026-07-02T20:00:00Z")).nextTransition)).toBe("2026-07-06T13:30:00.000Z");
  });

  test("closes at 13:00 on an early-close day", () => {
    expect(marketSession(at("2026-11-27T17:59:59Z"))).toMatchObject({
      open: true,
      day: "early_close",
      nextTransition: at("2026-11-27T18:00:00Z"),
    });
    expect(marketSession(at("2026-11-27T18:00:00Z")).open).toBe(false);
    expect(marketSession(at("2026-12-24T18:30:00Z")).open).toBe(false); // 13:30 on Christmas Eve
    expect(iso(marketSession(at("2026-12-24T18:30:00Z")).nextTransition)).toBe("2026-12-28T14:30:00.000Z");
  });

  test("at New York midnight the day changes, not at UTC midnight", () => {
    // 23:30 New York on Fri 2026-06-05 is already Saturday in UTC.
    const s = marketSession(at("2026-06-06T03:30:00Z"));
    expect(s).toMatchObject({ open: false, day: "trading" });
    expect(iso(s.nextTransition)).toBe("2026-06-08T13:30:00.000Z");
    expect(marketSession(at("2026-06-06T04:00:00Z")).day).toBe("weekend");
  });

  test("does not depend on the host time zone", () => {
    const saved = process.env.TZ;
    try {
      for (const tz of ["Asia/Kolkata", "Pacific/Kiritimati", "America/Los_Angeles"]) {
        process.env.TZ = tz;
        expect(marketSession(at("2026-03-09T13:30:00Z")).open).toBe(true);
        expect(iso(marketSession(at("2026-06-06T03:30:00Z")).nextTransition)).toBe("2026-06-08T13:30:00.000Z");
      }
    } finally {
      if (saved === undefined) delete process.env.TZ;
      else process.env.TZ = saved;
    }
  });

  test("knows holidays of any year: closed on Thanksgiving 2100, 13:00 close the day after", () => {
    expect(marketSession(at("2100-11-25T16:00:00Z"))).toMatchObject({
      open: false,
      day: "holiday",
      nextTransition: at("2100-11-26T14:30:00Z"),
    });
    expect(marketSession(at("2100-11-26T17:59:00Z"))).toMatchObject({
      open: true,
      day: "early_close",
      nextTransition: at("2100-11-26T18:00:00Z"),
    });
  });
});

describe("createMarketClock()", () => {
  test("gives the active interval during the session and the off-hours one otherwise", () => {
    const clock = manualClock("2026-06-02T14:00:00Z");
    const mc = createMarketClock({ clock, activeIntervalMs: 15_000, offHoursIntervalMs: 120_000 });
    expect(mc.cadence()).toEqual({ active: true, intervalMs: 15_000, nextTransition: at("2026-06-02T20:00:00Z") });
    clock.set("2026-06-06T15:00:00Z");
    expect(mc.cadence()).toMatchObject({
      active: false,
      intervalMs: 120_000,
      nextTransition: at("2026-06-08T13:30:00Z"),
    });
  });

  test("with market hours off it is always active", () => {
    const clock = manualClock("2026-06-06T15:00:00Z");
    const mc = createMarketClock({ clock, activeIntervalMs: 15_000, offHoursIntervalMs: 120_000, marketHours: false });
    expect(mc.cadence()).toMatchObject({ active: true, intervalMs: 15_000 });
  });

  test("a year past any published table (2028 on) keeps the holiday cadence", () => {
    const clock = manualClock("2028-01-17T15:00:00Z"); // MLK Day 2028, 10:00 New York
    const mc = createMarketClock({ clock, activeIntervalMs: 1, offHoursIntervalMs: 2 });
    expect(mc.cadence()).toMatchObject({ active: false, intervalMs: 2, nextTransition: at("2028-01-18T14:30:00Z") });
  });
});
