// The NYSE holiday calendar computed by rule (NYSE Rule 7.2), so it never
// runs out: any year gets its full closures and 13:00 early closes without a
// table to extend. Only unscheduled closures (days of mourning, storms) need
// a table, and only for the past: they are announced days ahead at best.

export interface Closure {
  /** New York calendar date, YYYY-MM-DD. */
  date: string;
  name: string;
}

export interface NyseYear {
  year: number;
  /** Full-day closures in date order (observed dates, plus the special closures of that year). */
  holidays: readonly Closure[];
  /** 13:00 New York closes in date order. */
  earlyCloses: readonly Closure[];
}

/**
 * Unscheduled full-day closures NYSE announced (national days of mourning,
 * weather, 9/11). Add a date here when NYSE announces one; until then the
 * flusher merely uses the market-hours interval on that day.
 */
export const NYSE_SPECIAL_CLOSURES: Readonly<Record<string, string>> = {
  "2001-09-11": "September 11 attacks",
  "2001-09-12": "September 11 attacks",
  "2001-09-13": "September 11 attacks",
  "2001-09-14": "September 11 attacks",
  "2004-06-11": "National Day of Mourning for President Ronald Reagan",
  "2007-01-02": "National Day of Mourning for President Gerald R. Ford",
  "2012-10-29": "Hurricane Sandy",
  "2012-10-30": "Hurricane Sandy",
  "2018-12-05": "National Day of Mourning for President George H. W. Bush",
  "2025-01-09": "National Day of Mourning for President Jimmy Carter",
};

/** The first year each holiday was an NYSE holiday (the others predate anything this service meets). */
const MLK_DAY_SINCE = 1998;
const JUNETEENTH_SINCE = 2022;

const DAY_MS = 86_400_000;
const pad = (n: number) => String(n).padStart(2, "0");

/** A date as days since the epoch, so arithmetic never meets a time zone. */
const dayNumber = (y: number, m: number, d: number) => Date.UTC(y, m - 1, d) / DAY_MS;
const weekdayOf = (day: number) => new Date(day * DAY_MS).getUTCDay();
const isoOf = (day: number) => new Date(day * DAY_MS).toISOString().slice(0, 10);

/** The n-th (1-based) `weekday` (0 = Sunday) of a month. */
function nthWeekday(y: number, m: number, weekday: number, n: number): number {
  const first = dayNumber(y, m, 1);
  return first + ((weekday - weekdayOf(first) + 7) % 7) + 7 * (n - 1);
}

function lastWeekday(y: number, m: number, weekday: number): number {
  const last = dayNumber(y, m + 1, 0);
  return last - ((weekdayOf(last) - weekday + 7) % 7);
}

/** Easter Sunday of the Gregorian calendar (the anonymous "Meeus/Jones/Butcher" computus). */
export function easterSunday(y: number): number {
  const a = y % 19;
  const b = Math.floor(y / 100);
  const c = y % 100;
  const h = (19 * a + b - Math.floor(b / 4) - Math.floor((b - Math.floor((b + 8) / 25) + 1) / 3) + 15) % 30;
  const l = (32 + 2 * (b % 4) + 2 * Math.floor(c / 4) - h - (c % 4)) % 7;
  const m = Math.floor((a + 11 * h + 22 * l) / 451);
  const month = Math.floor((h + l - 7 * m + 114) / 31);
  const day = ((h + l - 7 * m + 114) % 31) + 1;
  return dayNumber(y, month, day);
}

/**
 * Rule 7.2 observance of a fixed-date holiday: Sunday → the Monday after;
 * Saturday → the Friday before, unless that Friday ends a monthly or yearly
 * accounting period (the last business day of its month: in practice New
 * Year's Day on a Saturday is not observed at all). null: not observed.
 */
function observed(day: number): number | null {
  const w = weekdayOf(day);
  if (w === 0) return day + 1;
  if (w !== 6) return day;
  const friday = day - 1;
  const nextMonday = friday + 3;
  return new Date(nextMonday * DAY_MS).getUTCMonth() !== new Date(friday * DAY_MS).getUTCMonth() ? null : friday;
}

function scheduledHolidays(y: number): Array<[number | null, string]> {
  const thanksgiving = nthWeekday(y, 11, 4, 4);
  return [
    [observed(dayNumber(y, 1, 1)), "New Year's Day"],
    [y >= MLK_DAY_SINCE ? nthWeekday(y, 1, 1, 3) : null, "Martin Luther King, Jr. Day"],
    [nthWeekday(y, 2, 1, 3), "Washington's Birthday"],
    [easterSunday(y) - 2, "Good Friday"],
    [lastWeekday(y, 5, 1), "Memorial Day"],
    [y >= JUNETEENTH_SINCE ? observed(dayNumber(y, 6, 19)) : null, "Juneteenth National Independence Day"],
    [observed(dayNumber(y, 7, 4)), "Independence Day"],
    [nthWeekday(y, 9, 1, 1), "Labor Day"],
    [thanksgiving, "Thanksgiving Day"],
    [observed(dayNumber(y, 12, 25)), "Christmas Day"],
  ];
}

function computeYear(y: number): NyseYear {
  const closed = new Map<number, string>();
  for (const [day, name] of scheduledHolidays(y)) if (day !== null) closed.set(day, name);
  for (const [date, name] of Object.entries(NYSE_SPECIAL_CLOSURES)) {
    if (Number(date.slice(0, 4)) === y)
      closed.set(dayNumber(y, Number(date.slice(5, 7)), Number(date.slice(8, 10))), name);
  }
  // Early closes fall on weekdays that are not themselves closed: July 3 when
  // July 4 is a Tuesday to Friday (on a Saturday July 3 is the holiday; on a
  // Sunday or Monday July 3 is a weekend day), the day after Thanksgiving, and
  // Christmas Eve Monday to Thursday (a Friday Christmas Eve is the observed holiday).
  const early = new Map<number, string>([
    [dayNumber(y, 7, 3), "Independence Day eve"],
    [nthWeekday(y, 11, 4, 4) + 1, "Day after Thanksgiving"],
    [dayNumber(y, 12, 24), "Christmas Eve"],
  ]);
  for (const day of early.keys()) {
    const w = weekdayOf(day);
    if (w === 0 || w === 6 || closed.has(day)) early.delete(day);
  }
  const list = (m: Map<number, string>) =>
    [...m].sort(([a], [b]) => a - b).map(([day, name]) => ({ date: isoOf(day), name }));
  return { year: y, holidays: list(closed), earlyCloses: list(early) };
}

const cache = new Map<number, NyseYear>();

/** The NYSE calendar of a year (computed once, then kept). */
export function nyseYear(year: number): NyseYear {
  let entry = cache.get(year);
  if (!entry) {
    entry = computeYear(year);
    cache.set(year, entry);
  }
  return entry;
}

/** How NYSE treats a New York calendar date. */
export function nyseDay(y: number, m: number, d: number): "weekend" | "holiday" | "early_close" | "trading" {
  const w = weekdayOf(dayNumber(y, m, d));
  if (w === 0 || w === 6) return "weekend";
  const date = `${y}-${pad(m)}-${pad(d)}`;
  const year = nyseYear(y);
  if (year.holidays.some((h) => h.date === date)) return "holiday";
  if (year.earlyCloses.some((h) => h.date === date)) return "early_close";
  return "trading";
}
