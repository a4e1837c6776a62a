// `bun run bench [-- --quick] [-- --only=ingest,sse] [-- --no-write]`: starts
// the real service in child processes, drives it from separate load-generator
// processes, measures the raw limits of this machine in the same run, and
// writes BENCHMARKS.md. Sections run in the order of SECTIONS; add new ones
// (e.g. the flush benchmark) there.
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { machine, ROOT } from "./bench/lib.ts";
import { mergeReport, renderReport, type RunReport } from "./bench/report.ts";
import type { BenchContext, Section, SectionReport } from "./bench/section.ts";
import { flushSection } from "./bench/section-flush.ts";
import { budgetSection } from "./bench/section-budget.ts";
import { batchedSection, ingestSection } from "./bench/section-ingest.ts";
import { memorySection } from "./bench/section-memory.ts";
import { pythonSection } from "./bench/section-python.ts";
import { rawSection } from "./bench/section-raw.ts";
import { ratesSection } from "./bench/section-rates.ts";
import { saturationSection } from "./bench/section-saturation.ts";
import { scaleSection } from "./bench/section-scale.ts";
import { sseSection } from "./bench/section-sse.ts";
import { soakSection, spliceSection } from "./soak/report.ts";

export const SECTIONS: Section[] = [
  rawSection,
  ingestSection,
  budgetSection,
  batchedSection,
  saturationSection,
  sseSection,
  flushSection,
  scaleSection,
  pythonSection,
  ratesSection,
  memorySection,
];

const argv = process.argv.slice(2);
const quick = argv.includes("--quick");
const write = !argv.includes("--no-write");
const only = argv
  .find((a) => a.startsWith("--only="))
  ?.slice("--only=".length)
  .split(",");

const dir = mkdtempSync(join(tmpdir(), "zoe-bench-"));
const started = performance.now();
const ctx: BenchContext = {
  quick,
  dir,
  machine: machine(dir),
  results: {},
  memory: [],
  log: (message) => console.log(`[bench ${((performance.now() - started) / 1000).toFixed(1)}s] ${message}`),
  ms: (full, short) => (quick ? short : full),
};

const run: RunReport = {
  date: new Date().toISOString(),
  quick,
  machine: ctx.machine,
  loadAfter: [],
  durationS: 0,
  sections: [],
};
let failed = false;
try {
  for (const section of SECTIONS) {
    if (only && !only.includes(section.id) && section.id !== "memory") continue;
    const entry: RunReport["sections"][number] = { id: section.id, title: section.title };
    run.sections.push(entry);
    const reason = (await section.unavailable?.(ctx)) ?? null;
    if (reason) {
      entry.skipped = reason;
      ctx.log(`${section.id}: skipped (${reason})`);
      continue;
    }
    try {
      entry.report = await section.run(ctx);
      printSection(section, entry.report);
    } catch (error) {
      failed = true;
      entry.failed = (error as Error).message.split("\n")[0]!;
      console.error(`[bench] section ${section.id} failed:`, error);
    }
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}
run.loadAfter = loadavg().map((l) => Math.round(l * 100) / 100);
run.durationS = (performance.now() - started) / 1000;

const markdown = renderReport(run);
if (write) {
  // The soak writes its own section (bun run bench:soak); keep it.
  const path = join(ROOT, "BENCHMARKS.md");
  const previous = existsSync(path) ? readFileSync(path, "utf8") : "";
  const soak = soakSection(previous);
  // --only: only the sections that ran are replaced; the others keep their figures.
  const merged = only ? mergeReport(previous, markdown, run) : markdown;
  writeFileSync(path, soak ? spliceSection(merged, soak) : merged);
  ctx.log("wrote BENCHMARKS.md");
}
ctx.log(`done in ${run.durationS.toFixed(0)} s`);
process.exit(failed ? 1 : 0);

function printSection(section: Section, report: SectionReport) {
  console.log(`\n== ${section.title}`);
  for (const row of report.table) console.log(`  ${row.join(" | ")}`);
  for (const t of report.targets)
    console.log(
      `  target: ${t.what}: ${t.measured} (goal ${t.target}) ${t.met === null ? "n/a" : t.met ? "met" : "MISSED"}`,
    );
  console.log("");
}
