// The soak's report plumbing (scripts/soak/report.ts); the soak itself runs in `bun run bench:soak`, not in CI.
import { expect, test } from "bun:test";
import { BEGIN, END, slope, spliceSection } from "../../scripts/soak/report.ts";

test("spliceSection() replaces only the soak section, keeping the rest of BENCHMARKS.md", () => {
  const bench = "# Benchmarks\n\n## Ingest\n\n| a |\n";
  const first = spliceSection(bench, `${BEGIN}\nold\n${END}`);
  expect(first).toBe(`# Benchmarks\n\n## Ingest\n\n| a |\n\n${BEGIN}\nold\n${END}\n`);
  const withTail = `${first}\n## After\n`;
  expect(spliceSection(withTail, `${BEGIN}\nnew\n${END}`)).toBe(
    `# Benchmarks\n\n## Ingest\n\n| a |\n\n${BEGIN}\nnew\n${END}\n\n## After\n`,
  );
  expect(spliceSection("", `${BEGIN}\nx\n${END}`)).toBe(`${BEGIN}\nx\n${END}\n`);
});

test("slope() is the least-squares rise per step", () => {
  expect(slope([1, 2, 3, 4])).toBeCloseTo(1);
  expect(slope([5, 5, 5])).toBe(0);
  expect(slope([3, 1])).toBeCloseTo(-2);
  expect(slope([7])).toBe(0);
});
