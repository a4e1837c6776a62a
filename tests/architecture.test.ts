// The dependency rule of src/, checked on the real import graph: no import
// cycle anywhere, and every import points down the layers that README's
// "Layout" section lists. A new file in a new folder fails here until the
// folder is given a layer, so the tree keeps reading as the architecture.
// And the size rule: a file of src/ reads in one sitting (MAX_FILE_LINES), a
// function fits on a screen or two (MAX_FUNCTION_LINES) unless a
// `// long: <reason>` comment above it says why it may not.
import { describe, expect, test } from "bun:test";
import { readdirSync, readFileSync } from "node:fs";
import { dirname, join, normalize, relative } from "node:path";
import { importCycles, layerOf, LAYERS, type ImportGraph, upwardImports } from "./helpers/imports.ts";
import { lineCount, longFunctions, longFunctionsOfSource } from "./helpers/sizes.ts";

const ROOT = join(import.meta.dir, "..");
const SRC = join(ROOT, "src");

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const path = join(dir, e.name);
    if (e.isDirectory()) return sourceFiles(path);
    return /\.(ts|tsx)$/.test(e.name) && !e.name.endsWith(".d.ts") ? [path] : [];
  });
}

// Static imports, re-exports, dynamic import() and `new URL("./x.ts", import.meta.url)`
// (the checkpoint worker is loaded that way): every way one module can reach another.
const SPECIFIER = /(?:\bfrom\s*|\bimport\s*\(\s*|\bimport\s+|new URL\(\s*)["'](\.{1,2}\/[^"']+)["']/g;

function readGraph(): ImportGraph {
  const graph: ImportGraph = new Map();
  for (const file of sourceFiles(SRC)) {
    const from = relative(ROOT, file);
    const targets = new Set<string>();
    for (const m of readFileSync(file, "utf8").matchAll(SPECIFIER)) {
      targets.add(normalize(join(dirname(from), m[1]!)));
    }
    graph.set(from, [...targets]);
  }
  return graph;
}

describe("src/ layering", () => {
  const graph = readGraph();

  test("every file of src/ belongs to a layer", () => {
    const homeless = [...graph.keys()].filter((f) => layerOf(f) === null);
    expect(homeless).toEqual([]);
  });

  test("src/ has no import cycle", () => {
    expect(importCycles(graph)).toEqual([]);
  });

  test("every import points to the same layer's own folder or a lower layer", () => {
    expect(upwardImports(graph)).toEqual([]);
  });

  test("the layers are the ones README's layout section lists, in that order", () => {
    const readme = readFileSync(join(ROOT, "README.md"), "utf8");
    const section = readme.slice(readme.indexOf("## Layout"));
    const listed = [...section.matchAll(/^\| (\d+) \| `([^`]+)`/gm)].map((m) => `${m[1]} ${m[2]}`);
    expect(listed).toEqual(LAYERS.flatMap((l) => l.paths.map((p) => `${l.rank} ${p}`)));
  });
});

const MAX_FILE_LINES = 300;
const MAX_FUNCTION_LINES = 80;

describe("src/ sizes", () => {
  const files = sourceFiles(SRC);

  test(`no file of src/ is longer than ${MAX_FILE_LINES} lines`, () => {
    const long = files
      .map((f) => ({ file: relative(ROOT, f), lines: lineCount(readFileSync(f, "utf8")) }))
      .filter((f) => f.lines > MAX_FILE_LINES)
      .map((f) => `${f.file}: ${f.lines} lines`);
    expect(long).toEqual([]);
  });

  test(`no function of src/ is longer than ${MAX_FUNCTION_LINES} lines without a "// long:" reason`, async () => {
    const long = (
      await longFunctions(
        files.map((f) => relative(ROOT, f)),
        MAX_FUNCTION_LINES,
      )
    ).map((f) => `${f.file}:${f.line} ${f.name}() is ${f.lines} lines`);
    expect(long).toEqual([]);
  });
});

/** A function of `body` lines (plus its opening and closing lines) whose body holds braces in strings, a template and a regex. */
function sampleFunction(name: string, body: number): string {
  const filler = [
    '  const a = "}}}";',
    "  const b = `${'{'}}`;",
    "  const c = /[{}]/.test(a);",
    "  if (c) { void b; }",
  ];
  return [
    `export function ${name}(): void {`,
    ...Array.from({ length: body }, (_, i) => filler[i % filler.length]!),
    "}",
  ].join("\n");
}

describe("the size checker itself", () => {
  test("longFunctions() reports a function one line over the limit with its name, line and length, not one at it", async () => {
    const source = ["// a sample", sampleFunction("fits", 8), sampleFunction("over", 9), ""].join("\n");
    expect(await longFunctionsOfSource(source, 10)).toEqual([{ file: "sample.ts", name: "over", line: 12, lines: 11 }]);
  });

  test("longFunctions() names arrows and methods by what holds them, and counts a long closure inside its factory too", async () => {
    const source = [
      "export const arrow = (): number => {",
      ...Array.from({ length: 12 }, () => "  void 0;"),
      "  return 1;",
      "};",
      "export function factory() {",
      "  return {",
      "    method(): void {",
      ...Array.from({ length: 12 }, () => "      void 0;"),
      "    },",
      "  };",
      "}",
    ].join("\n");
    const found = await longFunctionsOfSource(source, 10);
    expect(found.map((f) => `${f.name}@${f.line}:${f.lines}`)).toEqual(["arrow@1:15", "factory@16:18", "method@18:14"]);
  });

  test("a `// long:` comment above a function, or above the const holding it, excuses its length; another comment does not", async () => {
    const excused = [
      "/**",
      " * Docs.",
      " */",
      "// long: one state machine, split it and the states scatter",
      sampleFunction("excused", 12),
    ];
    const held = [
      "// long: a table of cases",
      "export const held = () => {",
      ...Array.from({ length: 12 }, () => "  void 0;"),
      "};",
    ];
    const plain = ["// just long", sampleFunction("plain", 12)];
    const found = await longFunctionsOfSource([...excused, ...held, ...plain, ""].join("\n"), 10);
    expect(found.map((f) => f.name)).toEqual(["plain"]);
  });

  test("lineCount() counts a last line without a newline and not an empty one after it", () => {
    expect([lineCount(""), lineCount("a"), lineCount("a\n"), lineCount("a\nb")]).toEqual([0, 1, 1, 2]);
  });
});

describe("the checker itself", () => {
  test("importCycles() finds a cycle of three and names its files", () => {
    const graph: ImportGraph = new Map([
      ["src/a.ts", ["src/b.ts"]],
      ["src/b.ts", ["src/c.ts"]],
      ["src/c.ts", ["src/a.ts"]],
      ["src/d.ts", ["src/a.ts"]],
    ]);
    expect(importCycles(graph)).toEqual([["src/a.ts", "src/b.ts", "src/c.ts"]]);
  });

  test("upwardImports() reports a store module importing the HTTP layer", () => {
    const graph: ImportGraph = new Map([
      ["src/store/store.ts", ["src/http/app.ts", "src/domain/schema.ts"]],
      ["src/http/app.ts", ["src/store/store.ts"]],
    ]);
    expect(upwardImports(graph)).toEqual(["src/store/store.ts → src/http/app.ts (store may not import http)"]);
  });

  test("upwardImports() refuses imports between two folders of the same rank", () => {
    const graph: ImportGraph = new Map([["src/flush/flusher.ts", ["src/stream/hub.ts"]]]);
    expect(upwardImports(graph)).toEqual(["src/flush/flusher.ts → src/stream/hub.ts (flush may not import stream)"]);
  });
});
