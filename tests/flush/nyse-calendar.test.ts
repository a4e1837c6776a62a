import { describe, expect, test } from "bun:test";
import { easterSunday, NYSE_SPECIAL_CLOSURES, nyseDay, nyseYear } from "../../src/flush/nyse-calendar.ts";
import { NYSE_PUBLISHED } from "./fixtures/nyse-published.ts";

const WEEKDAYS = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];
const weekday = (date: string) => WEEKDAYS[new Date(`${date}T12:00:00Z`).getUTCDay()];
const dateOf = (day: number) => new Date(day * 86_400_000).toISOString().slice(0, 10);
const parse = (y: number, entry: string) => {
  const [date, day] = entry.split(" ") as [string, string];
  // A typo in the fixture (wrong date or wrong weekday) fails here, not as a calendar bug.
  expect(`${y}: ${date} is a ${weekday(date)}`).toBe(`${y}: ${date} is a ${day}`);
  return date;
};

describe("nyseYear()", () => {
  for (const [year, published] of Object.entries(NYSE_PUBLISHED)) {
    test(`gives NYSE's published full closures and early closes for ${year}`, () => {
      const y = Number(year);
      const computed = nyseYear(y);
      expect(computed.holidays.map((h) => h.date)).toEqual(published.holidays.map((e) => parse(y, e)));
      expect(computed.earlyCloses.map((h) => h.date)).toEqual(published.early.map((e) => parse(y, e)));
    });
  }

  test("names each closure", () => {
    expect(nyseYear(2027).holidays.find((h) => h.date === "2027-12-24")?.name).toBe("Christmas Day");
    expect(nyseYear(2025).holidays.find((h) => h.date === "2025-01-09")?.name).toContain("Jimmy Carter");
    expect(nyseYear(2028).earlyCloses.map((h) => h.name)).toEqual(["Independence Day eve", "Day after Thanksgiving"]);
  });

  test("every special closure is a weekday and counts as a holiday of its year", () => {
    for (const date of Object.keys(NYSE_SPECIAL_CLOSURES)) {
      expect(["Sat", "Sun"]).not.toContain(weekday(date));
      const [y, m, d] = date.split("-").map(Number) as [number, number, number];
      expect(nyseDay(y, m, d)).toBe("holiday");
    }
  });

  test("years far from today follow the same rules (2100, not a leap year; 2400, one)", () => {
    for (const y of [1999, 2050, 2100, 2400, 9999]) {
      const { holidays, earlyCloses } = nyseYear(y);
      const names = holidays.map((h) => h.name);
      expect(names).toContain("Good Friday");
      expect(names).toContain("Thanksgiving Day");
      expect(names.includes("Juneteenth National Independence Day")).toBe(y >= 2022);
      for (const h of [...holidays, ...earlyCloses]) {
        expect(h.date.startsWith(String(y))).toBe(true);
        expect(["Sat", "Sun"]).not.toContain(weekday(h.date));
      }
      const byName = (n: string) => holidays.find((h) => h.name === n)!.date;
      expect(weekday(byName("Thanksgiving Day"))).toBe("Thu");
      expect(Number(byName("Thanksgiving Day").slice(8))).toBeWithin(22, 29);
      expect(weekday(byName("Memorial Day"))).toBe("Mon");
      expect(Number(byName("Memorial Day").slice(8))).toBeGreaterThanOrEqual(25);
      expect(earlyCloses.some((h) => h.name === "Day after Thanksgiving")).toBe(true);
    }
    expect(nyseDay(2100, 11, 25)).toBe("holiday"); // Thanksgiving 2100: Nov 1 is a Monday
    expect(nyseDay(2100, 11, 26)).toBe("early_close");
    expect(nyseDay(2100, 2, 15)).toBe("holiday"); // Washington's Birthday: Feb 1 2100 is a Monday
    expect(nyseDay(2100, 3, 1)).toBe("trading"); // the Monday after Feb 28 (no Feb 29 in 2100)
  });

  test("New Year's Day on a Saturday is not observed on the Friday before (year-end accounting day)", () => {
    expect(nyseDay(2010, 12, 31)).toBe("trading");
    expect(nyseDay(2021, 12, 31)).toBe("trading");
    expect(nyseDay(2027, 12, 31)).toBe("trading");
    expect(nyseDay(2033, 12, 30)).toBe("trading"); // Jan 1 2034 is a Sunday: observed Monday Jan 2
    expect(nyseDay(2034, 1, 2)).toBe("holiday");
  });

  test("July 3 closes early only when July 4 falls Tuesday to Friday", () => {
    for (let y = 2000; y <= 2040; y++) {
      const july4 = weekday(`${y}-07-04`)!;
      const expected = ["Tue", "Wed", "Thu", "Fri"].includes(july4)
        ? "early_close"
        : july4 === "Sat"
          ? "holiday"
          : "weekend";
      expect(`${y} (July 4 on ${july4}): ${nyseDay(y, 7, 3)}`).toBe(`${y} (July 4 on ${july4}): ${expected}`);
      if (july4 === "Sat") expect(nyseDay(y, 7, 2)).toBe("trading"); // no early close before an observed Friday holiday
      if (july4 === "Sun") expect([nyseDay(y, 7, 2), nyseDay(y, 7, 5)]).toEqual(["trading", "holiday"]);
    }
  });
});

describe("easterSunday()", () => {
  test("matches known Easter dates, including the earliest and latest possible", () => {
    const known = [
      "1818-03-22",
      "1943-04-25",
      "2000-04-23",
      "2008-03-23",
      "2011-04-24",
      "2019-04-21",
      "2024-03-31",
      "2038-04-25",
      "2285-03-22",
    ];
    for (const date of known) expect(dateOf(easterSunday(Number(date.slice(0, 4))))).toBe(date);
  });

  test("is a Sunday from March 22 to April 25 in every year 1900–2500", () => {
    for (let y = 1900; y <= 2500; y++) {
      const date = dateOf(easterSunday(y));
      expect(weekday(date)).toBe("Sun");
      expect(date.slice(5) >= "03-22" && date.slice(5) <= "04-25").toBe(true);
    }
  });
});
