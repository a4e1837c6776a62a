// Display helpers for the dashboard page. Times carry their date and the
// browser's time zone: a trader reading an old or a remote figure must not
// have to guess which day or which clock it is on.

export function agoText(seconds: number): string {
  if (seconds < 120) return `${seconds}s ago`;
  if (seconds < 7200) return `${Math.floor(seconds / 60)}m ago`;
  if (seconds < 172_800) return `${Math.floor(seconds / 3600)}h ago`;
  return `${Math.floor(seconds / 86_400)}d ago`;
}

export function everyText(ms: number): string {
  return ms % 1000 === 0 ? `${ms / 1000}s` : `${(ms / 1000).toFixed(1)}s`;
}

/** The browser's short name for its time zone at `d` ("EST", "GMT+1", "UTC"). */
export function zoneText(d: Date): string {
  const part = new Intl.DateTimeFormat("en-US", { timeZoneName: "short" })
    .formatToParts(d)
    .find((p) => p.type === "timeZoneName");
  return part?.value ?? "local time";
}

/** `2026-01-05 10:00:00.123 EST` in the browser's time zone (milliseconds only if asked). */
export function timeText(ts: string, options: { ms?: boolean } = {}): string {
  const d = new Date(ts);
  if (ts === "" || Number.isNaN(d.getTime())) return ts || "—";
  const pad = (n: number, w = 2) => String(n).padStart(w, "0");
  const date = `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}`;
  const time = `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
  return `${date} ${time}${options.ms ? `.${pad(d.getMilliseconds(), 3)}` : ""} ${zoneText(d)}`;
}

export function moneyText(v: unknown): string {
  if (typeof v === "number" && Number.isFinite(v))
    return v.toLocaleString(undefined, { minimumFractionDigits: 2, maximumFractionDigits: 2 });
  if (v === null || v === undefined) return "—";
  return typeof v === "string" ? v : JSON.stringify(v);
}

export function valueText(v: unknown): string {
  if (v === null || v === undefined) return "—";
  if (typeof v === "number") return v.toLocaleString();
  if (typeof v === "string") return v;
  return JSON.stringify(v);
}

/** A field holding profit and loss: pnl, unrealized_pnl, realizedPnL, p&l, profit… */
export function isPnlKey(key: string): boolean {
  return /p(&|n)l|profit/i.test(key);
}

/**
 * A P&L figure with its sign spelled out (`+12.50`, `−3.10`, `0.00`) and its
 * direction for colour: the sign carries the meaning, the colour repeats it.
 */
export function pnlText(v: unknown): { text: string; sign: "up" | "down" | "flat" | null } {
  const n = typeof v === "string" && v.trim() !== "" ? Number(v) : v;
  if (typeof n !== "number" || !Number.isFinite(n)) return { text: valueText(v), sign: null };
  const abs = Math.abs(n).toLocaleString(undefined, { minimumFractionDigits: 2, maximumFractionDigits: 2 });
  if (abs === (0).toLocaleString(undefined, { minimumFractionDigits: 2 })) return { text: abs, sign: "flat" };
  return n > 0 ? { text: `+${abs}`, sign: "up" } : { text: `\u2212${abs}`, sign: "down" };
}
