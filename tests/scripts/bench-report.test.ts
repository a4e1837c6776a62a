import { expect, test } from "bun:test";
import { mergeReport, renderReport, type RunReport } from "../../scripts/bench/report.ts";

const machine = {
  cpu: "test CPU",
  cores: 2,
  memoryGb: 8,
  disk: "test disk",
  bun: "1.x",
  kernel: "test",
  loadBefore: [0.1, 0.1, 0.1],
};

function report(
  date: string,
  sections: [id: string, title: string, cell: string, target: string][],
): { run: RunReport; markdown: string } {
  const run: RunReport = {
    date,
    quick: false,
    machine,
    loadAfter: [0.2, 0.2, 0.2],
    durationS: 1,
    sections: sections.map(([id, title, cell, target]) => ({
      id,
      title,
      report: {
        table: [
          ["figure", "value"],
          ["x", cell],
        ],
        targets: [{ what: `${target} (${cell} events)`, measured: cell, target: "≥ 1", met: true }],
        analysis: [`analysis of ${id} ${cell}`],
      },
    })),
  };
  return { run, markdown: renderReport(run) };
}

test("mergeReport() replaces the sections and target rows of an --only run and keeps every other section", () => {
  const full = report("2026-01-01T00:00:00Z", [
    ["ingest", "Ingest", "100", "ingest rate"],
    ["flush", "Flush", "200", "drain rate"],
    ["memory", "Service memory (RSS)", "50", "peak RSS"],
  ]);
  const only = report("2026-01-02T00:00:00Z", [
    ["flush", "Flush", "999", "drain rate"],
    ["memory", "Service memory (RSS)", "1", "peak RSS"],
  ]);
  const merged = mergeReport(full.markdown, only.markdown, only.run);
  expect(merged).toContain("analysis of ingest 100");
  expect(merged).toContain("analysis of flush 999");
  expect(merged).not.toContain("analysis of flush 200");
  // A partial run's memory table would list only its own processes: the full run's stays.
  expect(merged).toContain("analysis of memory 50");
  expect(merged).toContain("`bun run bench -- --only=flush` on 2026-01-02T00:00:00Z");
  const targets = merged.split("## Targets")[1]!.split("## ")[0]!;
  expect(targets).toContain("| drain rate (999 events) |");
  expect(targets).not.toContain("drain rate (200 events)");
  expect(targets).toContain("| ingest rate (100 events) |");
  // The partial run's peak RSS covers only its own sections: the full run's target row stays.
  expect(targets).toContain("| peak RSS (50 events) |");
  expect(targets).not.toContain("peak RSS (1 events)");
  expect(merged.indexOf("## Ingest")).toBeLessThan(merged.indexOf("## Flush"));
});
