// What a benchmark section is. `bun run bench` runs a list of these in order
// (see SECTIONS in scripts/bench.ts); a later section can read what an earlier
// one left in ctx.results (e.g. the raw limits the ratios are taken against).
import type { Machine } from "./lib.ts";

export interface BenchContext {
  quick: boolean;
  /** Temp directory for databases and stats files; removed after the run. */
  dir: string;
  machine: Machine;
  /** Figures shared between sections, keyed by section id. */
  results: Record<string, unknown>;
  /** Peak resident memory of each service process the sections started. */
  memory: { label: string; rssMb: number; peakMb: number }[];
  log(message: string): void;
  /** Full-run duration, or the shorter one under --quick. */
  ms(full: number, quick: number): number;
}

export interface TargetCheck {
  what: string;
  measured: string;
  target: string;
  /** null when the figure could not be measured. */
  met: boolean | null;
}

export interface SectionReport {
  /** Markdown table: first row is the header. */
  table: string[][];
  targets: TargetCheck[];
  /** Short bullets: what limits each figure, derived from the measurements. */
  analysis: string[];
}

export interface Section {
  id: string;
  title: string;
  /** Why the section cannot run here (missing module, missing server), or null. */
  unavailable?(ctx: BenchContext): string | null | Promise<string | null>;
  run(ctx: BenchContext): Promise<SectionReport>;
}

export const fmt = {
  int: (n: number) => (Number.isFinite(n) ? Math.round(n).toLocaleString("en-US") : "n/a"),
  ms: (n: number) => (Number.isFinite(n) ? (n < 10 ? n.toFixed(2) : n.toFixed(1)) : "n/a"),
  x: (n: number) => (Number.isFinite(n) ? `${n.toFixed(2)}×` : "n/a"),
  pct: (n: number) => (Number.isFinite(n) ? `${Math.round(n * 100)}%` : "n/a"),
  cores: (n: number | null) => (n !== null && Number.isFinite(n) ? n.toFixed(2) : "n/a"),
};
