// The drawing of the dashboard's history charts as plain data: samples and a
// size in, scales, axis ticks and SVG path data out. No DOM and no React, so
// bun:test checks the geometry exactly and the browser test can recompute
// what the page must have drawn from the service's own /local/history figures.

export interface SeriesInput {
  name: string;
  /** Sample times, epoch ms, ascending. */
  t: readonly number[];
  /** One value per time; null is a gap (e.g. no send in that interval). */
  values: readonly (number | null)[];
}

export interface ChartSize {
  width: number;
  height: number;
}

export interface Margin {
  top: number;
  right: number;
  bottom: number;
  left: number;
}

// Room for the y labels on the left and the time labels below.
export const DEFAULT_MARGIN: Margin = { top: 8, right: 12, bottom: 18, left: 40 };

export interface Tick {
  value: number;
  /** Pixel position along the axis (x for time ticks, y for value ticks). */
  at: number;
}

export interface SeriesGeometry {
  name: string;
  /** SVG path data; "" when the series has no point in the window. */
  d: string;
  /** Points drawn (non-null values in the window). */
  points: number;
  /** The newest drawn point, for the "current value" marker. */
  last: { t: number; value: number; x: number; y: number } | null;
}

export interface ChartGeometry {
  /** True when no series has a point: the page shows "no data yet". */
  empty: boolean;
  plot: { left: number; top: number; right: number; bottom: number };
  x: { min: number; max: number; ticks: Tick[] };
  y: { max: number; ticks: Tick[] };
  series: SeriesGeometry[];
}

export interface ChartOptions {
  /** Only samples this recent (relative to the newest) are drawn; default one hour. */
  windowMs?: number;
  margin?: Margin;
}

/** One decimal is finer than a pixel and keeps the path strings short and stable. */
export const px = (n: number) => Math.round(n * 10) / 10;

/** The smallest 1, 2 or 5 × 10^k at or above `v` (1 for nothing or zero), so the top tick reads as a round number. */
export function niceCeil(v: number): number {
  if (!(v > 0) || !Number.isFinite(v)) return 1;
  const power = 10 ** Math.floor(Math.log10(v));
  for (const step of [1, 2, 5, 10]) {
    // A tolerance so 3.0000000004 (float noise from a rate) does not round up to 5.
    if (v <= step * power * (1 + 1e-9)) return step * power;
  }
  return 10 * power;
}

/** A linear map from [d0, d1] onto [r0, r1]; a zero-width domain maps everything to r1 (the newest edge). */
export function linearScale(d0: number, d1: number, r0: number, r1: number): (v: number) => number {
  if (d1 === d0) return () => r1;
  const k = (r1 - r0) / (d1 - d0);
  return (v) => r0 + (v - d0) * k;
}

/**
 * "M x,y L x,y …" through the points, starting a new subpath after every gap.
 * A point alone between gaps gets a zero-length segment ("h0"): with round
 * line caps it shows as a dot, where a bare "M" would draw nothing (latency
 * has a value only in the intervals that sent something).
 */
export function linePath(points: readonly ({ x: number; y: number } | null)[]): string {
  let d = "";
  for (let i = 0; i < points.length; i++) {
    const p = points[i];
    if (!p) continue;
    const pen = Boolean(points[i - 1]);
    d += `${pen ? "L" : "M"}${px(p.x)},${px(p.y)}`;
    if (!pen && !points[i + 1]) d += "h0";
  }
  return d;
}

export function chartGeometry(
  input: readonly SeriesInput[],
  size: ChartSize,
  options: ChartOptions = {},
): ChartGeometry {
  const margin = options.margin ?? DEFAULT_MARGIN;
  const windowMs = options.windowMs ?? 3_600_000;
  const plot = {
    left: margin.left,
    top: margin.top,
    right: size.width - margin.right,
    bottom: size.height - margin.bottom,
  };

  let newest = -Infinity;
  for (const s of input) if (s.t.length > 0) newest = Math.max(newest, s.t[s.t.length - 1]!);
  const from = newest - windowMs;
  const inWindow = (i: number, s: SeriesInput) =>
    s.t[i]! >= from && s.values[i] !== null && s.values[i] !== undefined && Number.isFinite(s.values[i]);

  // The time axis spans every sample in the window, null or not, so the three
  // charts line up even where one of them has nothing to draw yet.
  let oldest = Infinity;
  let top = 0;
  let drawable = false;
  for (const s of input) {
    for (let i = 0; i < s.t.length; i++) {
      if (s.t[i]! >= from) oldest = Math.min(oldest, s.t[i]!);
      if (!inWindow(i, s)) continue;
      drawable = true;
      top = Math.max(top, s.values[i]!);
    }
  }
  const empty = !drawable;
  const xMin = empty ? 0 : oldest;
  const xMax = empty ? 0 : newest;
  const yMax = niceCeil(top);
  const sx = linearScale(xMin, xMax, plot.left, plot.right);
  const sy = linearScale(0, yMax, plot.bottom, plot.top);

  const series = input.map((s): SeriesGeometry => {
    const points: ({ x: number; y: number } | null)[] = [];
    let last: SeriesGeometry["last"] = null;
    let count = 0;
    for (let i = 0; i < s.t.length; i++) {
      if (s.t[i]! < from) continue;
      if (!inWindow(i, s)) {
        points.push(null);
        continue;
      }
      const p = { x: sx(s.t[i]!), y: sy(s.values[i]!) };
      points.push(p);
      count++;
      last = { t: s.t[i]!, value: s.values[i]!, x: px(p.x), y: px(p.y) };
    }
    return { name: s.name, d: linePath(points), points: count, last };
  });

  const xTicks = empty
    ? []
    : xMin === xMax
      ? [{ value: xMax, at: px(sx(xMax)) }]
      : [xMin, (xMin + xMax) / 2, xMax].map((v) => ({ value: v, at: px(sx(v)) }));
  const yTicks = [0, yMax / 2, yMax].map((v) => ({ value: v, at: px(sy(v)) }));
  return { empty, plot, x: { min: xMin, max: xMax, ticks: xTicks }, y: { max: yMax, ticks: yTicks }, series };
}

/** A tick label: 0, 2.5, 500, 1.5k, 2M. */
export function tickText(v: number): string {
  const abs = Math.abs(v);
  const short = (n: number, unit: string) => `${Number(n.toFixed(n < 10 ? 1 : 0))}${unit}`;
  if (abs >= 1e6) return short(v / 1e6, "M");
  if (abs >= 1e3) return short(v / 1e3, "k");
  return String(Number(v.toFixed(abs < 10 ? 2 : abs < 100 ? 1 : 0)));
}

/** A time tick label, HH:MM:SS in the browser's zone. */
export function clockText(ms: number): string {
  const d = new Date(ms);
  const pad = (n: number) => String(n).padStart(2, "0");
  return `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

/**
 * `text` broken at spaces into lines of at most `width` pixels at `fontSize`
 * (a generous 0.62 em a character, so proportional text fits), for a message
 * that must stay inside the plot; a word longer than a line stands alone.
 */
export function wrapText(text: string, width: number, fontSize: number): string[] {
  const max = Math.max(1, Math.floor(width / (fontSize * 0.62)));
  const lines: string[] = [];
  let line = "";
  for (const word of text.split(/\s+/).filter(Boolean)) {
    if (line && line.length + 1 + word.length > max) {
      lines.push(line);
      line = word;
    } else line = line ? `${line} ${word}` : word;
  }
  if (line) lines.push(line);
  return lines;
}
