import { describe, expect, test } from "bun:test";
import {
  chartGeometry,
  linearScale,
  linePath,
  niceCeil,
  tickText,
  wrapText,
} from "../../src/dashboard/page/chart-geometry.ts";

const margin = { top: 0, right: 0, bottom: 0, left: 0 };
const size = { width: 100, height: 50 };

describe("niceCeil()", () => {
  test("rounds up to 1, 2 or 5 times a power of ten, and gives 1 for nothing", () => {
    expect([0, -3, Number.NaN, 0.3, 1, 1.01, 3, 7, 10, 12, 480, 501, 3.0000000004].map(niceCeil)).toEqual([
      1, 1, 1, 0.5, 1, 2, 5, 10, 10, 20, 500, 1000, 5,
    ]);
  });
});

describe("linearScale()", () => {
  test("maps the domain's ends onto the range's, inverted for a y axis", () => {
    const sy = linearScale(0, 10, 50, 0);
    expect([sy(0), sy(5), sy(10)]).toEqual([50, 25, 0]);
  });

  test("puts every value of a zero-width domain at the range's end", () => {
    expect(linearScale(7, 7, 0, 100)(7)).toBe(100);
  });
});

describe("linePath()", () => {
  test("starts a new subpath after a gap and rounds to a tenth of a pixel", () => {
    expect(linePath([{ x: 0, y: 1.26 }, { x: 10, y: 2 }, null, { x: 20.04, y: 3 }, { x: 30, y: 4 }])).toBe(
      "M0,1.3L10,2M20,3L30,4",
    );
    expect(linePath([null, null])).toBe("");
  });

  test("gives a point alone between gaps a zero-length segment, so it shows as a dot", () => {
    expect(linePath([{ x: 1, y: 1 }, null, { x: 2, y: 2 }, null, { x: 3, y: 3 }, { x: 4, y: 4 }])).toBe(
      "M1,1h0M2,2h0M3,3L4,4",
    );
    expect(linePath([{ x: 5, y: 5 }])).toBe("M5,5h0");
  });
});

describe("chartGeometry()", () => {
  test("scales time onto the width and values from 0 to a round top onto the height", () => {
    const g = chartGeometry([{ name: "paper", t: [1000, 2000, 3000], values: [0, 4, 8] }], size, { margin });
    expect(g.empty).toBe(false);
    expect(g.y.max).toBe(10);
    expect(g.x).toEqual({
      min: 1000,
      max: 3000,
      ticks: [
        { value: 1000, at: 0 },
        { value: 2000, at: 50 },
        { value: 3000, at: 100 },
      ],
    });
    expect(g.y.ticks).toEqual([
      { value: 0, at: 50 },
      { value: 5, at: 25 },
      { value: 10, at: 0 },
    ]);
    // y = 50 - v * 5
    expect(g.series[0]).toEqual({
      name: "paper",
      d: "M0,50L50,30L100,10",
      points: 3,
      last: { t: 3000, value: 8, x: 100, y: 10 },
    });
  });

  test("leaves gaps where a value is null and takes the newest non-null point as the current one", () => {
    const g = chartGeometry([{ name: "mean", t: [0, 10, 20, 30], values: [2, null, 1, null] }], size, { margin });
    expect(g.y.max).toBe(2);
    expect(g.series[0]!.d).toBe("M0,0h0M66.7,25h0");
    expect(g.series[0]!.points).toBe(2);
    expect(g.series[0]!.last).toEqual({ t: 20, value: 1, x: 66.7, y: 25 });
    // The x domain still ends at the newest sample, null or not.
    expect(g.x.max).toBe(30);
  });

  test("spans the time axis over every sample, so leading nulls do not shift the line", () => {
    const g = chartGeometry([{ name: "mean", t: [0, 10, 20], values: [null, null, 4] }], size, { margin });
    expect(g.x.min).toBe(0);
    expect(g.series[0]!.d).toBe("M100,10h0");
  });

  test("shares one time axis and one value axis between series sampled at different times", () => {
    const g = chartGeometry(
      [
        { name: "paper", t: [0, 100], values: [1, 1] },
        { name: "live", t: [50, 200], values: [2, 20] },
      ],
      size,
      { margin },
    );
    expect(g.x.min).toBe(0);
    expect(g.x.max).toBe(200);
    expect(g.y.max).toBe(20);
    expect(g.series.map((s) => s.d)).toEqual(["M0,47.5L50,47.5", "M25,45L100,0"]);
  });

  test("draws only the window before the newest sample", () => {
    const g = chartGeometry([{ name: "s", t: [0, 500, 1000, 1500], values: [99, 1, 2, 3] }], size, {
      margin,
      windowMs: 1000,
    });
    expect(g.x.min).toBe(500);
    expect(g.y.max).toBe(5);
    expect(g.series[0]!.points).toBe(3);
    expect(g.series[0]!.d).toBe("M0,40L50,30L100,20");
  });

  test("is empty without samples, or with only null values, and still gives a value axis", () => {
    for (const input of [[], [{ name: "s", t: [], values: [] }], [{ name: "s", t: [1, 2], values: [null, null] }]]) {
      const g = chartGeometry(input, size, { margin });
      expect(g.empty).toBe(true);
      expect(g.x.ticks).toEqual([]);
      expect(g.y.max).toBe(1);
      expect(g.series.every((s) => s.d === "" && s.last === null)).toBe(true);
    }
  });

  test("puts a single sample at the right edge with one time tick", () => {
    const g = chartGeometry([{ name: "s", t: [5000], values: [3] }], size, { margin });
    expect(g.series[0]!.d).toBe("M100,20h0");
    expect(g.x.ticks).toEqual([{ value: 5000, at: 100 }]);
  });

  test("keeps the plot inside the margins", () => {
    const g = chartGeometry(
      [{ name: "s", t: [0, 1], values: [0, 1] }],
      { width: 360, height: 150 },
      { margin: { top: 8, right: 12, bottom: 18, left: 40 } },
    );
    expect(g.plot).toEqual({ left: 40, top: 8, right: 348, bottom: 132 });
    expect(g.series[0]!.d).toBe("M40,132L348,8");
  });
});

describe("tickText()", () => {
  test("writes axis values short", () => {
    expect([0, 0.25, 2.5, 12.34, 500, 1500, 25_000, 2_000_000].map(tickText)).toEqual([
      "0",
      "0.25",
      "2.5",
      "12.3",
      "500",
      "1.5k",
      "25k",
      "2M",
    ]);
  });
});

describe("wrapText()", () => {
  test("breaks at spaces into lines that fit the width, every word kept in order", () => {
    const text = "the local service is unreachable: its history is not available";
    const lines = wrapText(text, 300, 12);
    expect(lines.length).toBeGreaterThan(1);
    for (const line of lines) expect(line.length * 12 * 0.62).toBeLessThanOrEqual(300);
    expect(lines.join(" ")).toBe(text);
    expect(wrapText("no data yet", 300, 12)).toEqual(["no data yet"]);
    expect(wrapText("supercalifragilistic word", 40, 12)).toEqual(["supercalifragilistic", "word"]);
  });
});
