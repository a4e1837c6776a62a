// The dependency rule of src/, checked on the real import graph: no import
// cycle anywhere, and every import points down the layers that
// docs/ARCHITECTURE.md's "Layout" section lists. A new file in a new folder fails here until the
// folder is given a layer, so the tree keeps reading as the architecture.
// How long a file or a function is stays the concept's call, not a number's.
import { describe, expect, test } from "bun:test";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { dirname, join, normalize, relative } from "node:path";
import { importCycles, layerOf, LAYERS, type ImportGraph, upwardImports } from "./helpers/imports.ts";

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

  test("the layers are the ones docs/ARCHITECTURE.md's layout section lists, in that order", () => {
    const doc = readFileSync(join(ROOT, "docs", "ARCHITECTURE.md"), "utf8");
    const section = doc.slice(doc.indexOf("## Layout"));
    const listed = [...section.matchAll(/^\| (\d+) \| `([^`]+)`/gm)].map((m) => `${m[1]} ${m[2]}`);
    expect(listed).toEqual(LAYERS.flatMap((l) => l.paths.map((p) => `${l.rank} ${p}`)));
  });
});

describe("docs/ARCHITECTURE.md's walkthrough", () => {
  test("every file it names by its path exists, so the walk stays true as files move", () => {
    const doc = readFileSync(join(ROOT, "docs", "ARCHITECTURE.md"), "utf8");
    const named = [
      ...doc.matchAll(/`((?:src|supabase|clients|scripts|sql|tests|ops)\/[\w./-]+\.(?:ts|tsx|py|sql|yml))`/g),
    ].map((m) => m[1]!);
    expect(named.length).toBeGreaterThan(20);
    expect(named.filter((path) => !existsSync(join(ROOT, path)))).toEqual([]);
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
      ["src/store/store.ts", ["src/http/app.ts", "src/lib/clock.ts"]],
      ["src/http/app.ts", ["src/store/store.ts"]],
    ]);
    expect(upwardImports(graph)).toEqual(["src/store/store.ts → src/http/app.ts (store may not import http)"]);
  });

  test("upwardImports() refuses imports between two folders of the same rank", () => {
    const graph: ImportGraph = new Map([["src/flush/flusher.ts", ["src/stream/hub.ts"]]]);
    expect(upwardImports(graph)).toEqual(["src/flush/flusher.ts → src/stream/hub.ts (flush may not import stream)"]);
  });
});
