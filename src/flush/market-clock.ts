// NYSE regular-session calendar in New York time, for the flusher's dials:
// flush often while the market trades, rarely otherwise. Wall-clock fields
// come from Intl (never from the host zone or fixed UTC offsets), so DST
// changes and midnight need no special cases.
import type { Clock } from "../lib/clock.ts";
import { nyseDay } from "./nyse-calendar.ts";

export const MARKET_TIME_ZONE = "America/New_York";
const OPEN_MINUTE = 9 * 60 + 30;
const CLOSE_MINUTE = 16 * 60;
const EARLY_CLOSE_MINUTE = 13 * 60;

export interface WallClock {
  year: number;
  month: number;
  day: number;
  hour: number;
  minute: number;
  second: number;
  /** 0 = Sunday … 6 = Saturday. */
  weekday: number;
}

export type DayKind = "trading" | "early_close" | "holiday" | "weekend";

export interface MarketSession {
  open: boolean;
  /** What kind of day it is in New York. */
  day: DayKind;
  /** Next instant (epoch ms) at which `open` flips. */
  nextTransition: number;
}

// Made on first use: building a formatter for a named zone loads ICU's zone
// data (~10 ms), and a service without a remote never asks for market hours.
let formatter: Intl.DateTimeFormat | null = null;
const newYorkFormatter = () =>
  (formatter ??= new Intl.DateTimeFormat("en-US", {
    timeZone: MARKET_TIME_ZONE,
    hourCycle: "h23",
    year: "numeric",
    month: "2-digit",
    day: "2-digit",
    hour: "2-digit",
    minute: "2-digit",
    second: "2-digit",
  }));

/** The New York wall clock at `at` (epoch ms). */
export function newYorkWallClock(at: number): WallClock {
  const f: Record<string, number> = {};
  for (const p of newYorkFormatter().formatToParts(new Date(at))) if (p.type !== "literal") f[p.type] = Number(p.value);
  const { year, month, day, hour, minute, second } = f as Record<
    "year" | "month" | "day" | "hour" | "minute" | "second",
    number
  >;
  return { year, month, day, hour, minute, second, weekday: new Date(Date.UTC(year, month - 1, day)).getUTCDay() };
}

function offsetAt(at: number): number {
  const w = newYorkWallClock(at);
  const asUtc = Date.UTC(w.year, w.month - 1, w.day, w.hour, w.minute, w.second);
  return asUtc - Math.floor(at / 1000) * 1000;
}

/** Epoch ms of a New York wall time (unambiguous outside the 02:00–03:00 DST hours). */
export function newYorkToEpoch(year: number, month: number, day: number, minuteOfDay: number): number {
  const guess = Date.UTC(year, month - 1, day, Math.floor(minuteOfDay / 60), minuteOfDay % 60);
  const first = guess - offsetAt(guess);
  const second = guess - offsetAt(first);
  return second;
}

const isoDate = (y: number, m: number, d: number) => `${y}-${String(m).padStart(2, "0")}-${String(d).padStart(2, "0")}`;

/** Classifies a New York calendar date by the NYSE rules (any year). */
export function dayKind(year: number, month: number, day: number): DayKind {
  return nyseDay(year, month, day);
}

const closeMinute = (kind: DayKind) => (kind === "early_close" ? EARLY_CLOSE_MINUTE : CLOSE_MINUTE);
const isTradingDay = (kind: DayKind) => kind === "trading" || kind === "early_close";

/** Whether the NYSE regular session is open at `at`, and when that next changes. */
export function marketSession(at: number): MarketSession {
  const w = newYorkWallClock(at);
  const kind = dayKind(w.year, w.month, w.day);
  const minute = w.hour * 60 + w.minute + w.second / 60;
  if (isTradingDay(kind)) {
    if (minute < OPEN_MINUTE) {
      return { open: false, day: kind, nextTransition: newYorkToEpoch(w.year, w.month, w.day, OPEN_MINUTE) };
    }
    if (minute < closeMinute(kind)) {
      return { open: true, day: kind, nextTransition: newYorkToEpoch(w.year, w.month, w.day, closeMinute(kind)) };
    }
  }
  // Closed for the rest of the day: the next open is on the next trading day.
  // A long weekend plus holidays never spans more than a few days.
  for (let i = 1; i <= 14; i++) {
    const d = new Date(Date.UTC(w.year, w.month - 1, w.day + i));
    const [y, m, dd] = [d.getUTCFullYear(), d.getUTCMonth() + 1, d.getUTCDate()];
    if (isTradingDay(dayKind(y, m, dd))) {
      return { open: false, day: kind, nextTransition: newYorkToEpoch(y, m, dd, OPEN_MINUTE) };
    }
  }
  throw new Error(`No NYSE trading day within 14 days after ${isoDate(w.year, w.month, w.day)}`);
}

export interface FlushCadence {
  /** True while the regular session is open. */
  active: boolean;
  intervalMs: number;
  /** When the cadence next changes (epoch ms). */
  nextTransition: number;
}

export interface MarketClock {
  session(at?: number): MarketSession;
  /** The flush interval in force at `at`, and when it changes next. */
  cadence(at?: number): FlushCadence;
}

export function createMarketClock(options: {
  clock: Clock;
  activeIntervalMs: number;
  offHoursIntervalMs: number;
  /** false: always the active interval (e.g. crypto or tests). */
  marketHours?: boolean;
}): MarketClock {
  const session = (at = options.clock.now()) => marketSession(at);
  return {
    session,
    cadence(at = options.clock.now()) {
      if (options.marketHours === false)
        return { active: true, intervalMs: options.activeIntervalMs, nextTransition: Number.POSITIVE_INFINITY };
      const s = session(at);
      return {
        active: s.open,
        intervalMs: s.open ? options.activeIntervalMs : options.offHoursIntervalMs,
        nextTransition: s.nextTransition,
      };
    },
  };
}
