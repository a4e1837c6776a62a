// The layers of src/ and two checks over an import graph (file → files it
// imports, paths relative to the repo). tests/architecture.test.ts feeds it
// the real graph; README's layout section lists the same table.

export type ImportGraph = Map<string, string[]>;

export interface Layer {
  rank: number;
  name: string;
  /** A folder (ending in "/") or a single file. */
  paths: string[];
}

/**
 * Lower ranks are imported by higher ones, never the reverse. Folders of the
 * same rank stay apart (stream and flush both build on the store and do not
 * know each other). src/client/ ships to browsers, so it imports only itself.
 */
export const LAYERS: Layer[] = [
  { rank: 0, name: "lib", paths: ["src/lib/"] },
  { rank: 0, name: "client", paths: ["src/client/"] },
  { rank: 1, name: "domain", paths: ["src/domain/"] },
  { rank: 2, name: "config", paths: ["src/config.ts"] },
  { rank: 3, name: "store", paths: ["src/store/"] },
  { rank: 4, name: "stream", paths: ["src/stream/"] },
  { rank: 4, name: "flush", paths: ["src/flush/"] },
  { rank: 5, name: "ops", paths: ["src/ops/"] },
  { rank: 6, name: "http", paths: ["src/http/"] },
  { rank: 6, name: "dashboard", paths: ["src/dashboard/"] },
  { rank: 7, name: "main", paths: ["src/main.ts", "src/config-check.ts"] },
  { rank: 8, name: "cli", paths: ["src/cli/"] },
];

/** The one place outside src/ a module may import: the schema and rules shared with the Edge Function, part of the domain layer. */
const SHARED = "supabase/functions/_shared/";

export function layerOf(file: string): Layer | null {
  return LAYERS.find((l) => l.paths.some((p) => (p.endsWith("/") ? file.startsWith(p) : file === p))) ?? null;
}

/** Strongly connected components with more than one file (or a file importing itself), each sorted, in file order. */
export function importCycles(graph: ImportGraph): string[][] {
  let next = 0;
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const cycles: string[][] = [];

  // Iterative Tarjan: src/ is small, but a recursive walk is one deep chain away from a stack overflow.
  for (const start of [...graph.keys()].sort()) {
    if (index.has(start)) continue;
    const work: { node: string; edge: number }[] = [{ node: start, edge: 0 }];
    index.set(start, next);
    low.set(start, next++);
    stack.push(start);
    onStack.add(start);
    while (work.length > 0) {
      const frame = work.at(-1)!;
      const edges = graph.get(frame.node) ?? [];
      if (frame.edge < edges.length) {
        const to = edges[frame.edge++]!;
        if (!graph.has(to)) continue;
        if (!index.has(to)) {
          index.set(to, next);
          low.set(to, next++);
          stack.push(to);
          onStack.add(to);
          work.push({ node: to, edge: 0 });
        } else if (onStack.has(to)) {
          low.set(frame.node, Math.min(low.get(frame.node)!, index.get(to)!));
        }
        continue;
      }
      work.pop();
      const parent = work.at(-1);
      if (parent) low.set(parent.node, Math.min(low.get(parent.node)!, low.get(frame.node)!));
      if (low.get(frame.node) !== index.get(frame.node)) continue;
      const component: string[] = [];
      let member: string;
      do {
        member = stack.pop()!;
        onStack.delete(member);
        component.push(member);
      } while (member !== frame.node);
      const selfLoop = component.length === 1 && edges.includes(frame.node);
      if (component.length > 1 || selfLoop) cycles.push(component.sort());
    }
  }
  return cycles.sort((a, b) => a[0]!.localeCompare(b[0]!));
}

/** Imports that break the layering, as readable lines. */
export function upwardImports(graph: ImportGraph): string[] {
  const problems: string[] = [];
  for (const [from, targets] of [...graph].sort(([a], [b]) => a.localeCompare(b))) {
    const source = layerOf(from);
    if (!source) continue;
    for (const to of targets) {
      if (!to.startsWith("src/")) {
        const domainRank = LAYERS.find((l) => l.name === "domain")!.rank;
        if (!to.startsWith(SHARED)) problems.push(`${from} → ${to} (src/ may import only ${SHARED} outside itself)`);
        else if (source.name === "client" || source.rank < domainRank)
          problems.push(`${from} → ${to} (${source.name} may not import domain)`);
        continue;
      }
      const target = layerOf(to);
      if (!target || target === source) continue;
      const allowed =
        source.name !== "client" && target.name !== "client" ? target.rank < source.rank : source.name === "dashboard";
      if (!allowed) problems.push(`${from} → ${to} (${source.name} may not import ${target.name})`);
    }
  }
  return problems;
}
