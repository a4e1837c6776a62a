// How long a file's functions are, measured on the syntax tree TypeScript's
// own parser builds (so a brace in a string, a template or a regex does not
// fool it). The installed compiler is TypeScript 7, whose parser runs in the
// native tsgo binary; its async API is the way in from JS, and it reads real
// files, so a source under test is written to a throwaway project first.
// tests/architecture.test.ts feeds it every file of src/; a function over the
// limit passes only with a `// long: <reason>` comment on its first line or in
// the comments just above it.
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { API } from "typescript/unstable/async";
import type { Node, SourceFile } from "typescript/unstable/ast";
import {
  isArrowFunction,
  isBlock,
  isClassLikeDeclaration,
  isConstructorDeclaration,
  isFunctionDeclaration,
  isFunctionExpression,
  isGetAccessorDeclaration,
  isMethodDeclaration,
  isObjectLiteralExpression,
  isPropertyAssignment,
  isPropertyDeclaration,
  isSetAccessorDeclaration,
  isSourceFile,
  isVariableDeclaration,
} from "typescript/unstable/ast/is";

export interface LongFunction {
  /** The path as the caller gave it. */
  file: string;
  /** The function's name, or the name it is assigned to; "<anonymous>" otherwise. */
  name: string;
  /** 1-based line the function starts on. */
  line: number;
  lines: number;
}

const MARKER = /\/\/\s*long:\s*\S/;

type FunctionNode = Node & { body?: Node; name?: Node };

function isFunction(node: Node): node is FunctionNode {
  return (
    isFunctionDeclaration(node) ||
    isFunctionExpression(node) ||
    isArrowFunction(node) ||
    isMethodDeclaration(node) ||
    isConstructorDeclaration(node) ||
    isGetAccessorDeclaration(node) ||
    isSetAccessorDeclaration(node)
  );
}

function nameOf(node: FunctionNode, sf: SourceFile): string {
  if (node.name) return node.name.getText(sf);
  if (isConstructorDeclaration(node)) return "constructor";
  const parent = node.parent;
  if (parent && (isVariableDeclaration(parent) || isPropertyAssignment(parent) || isPropertyDeclaration(parent))) {
    return parent.name.getText(sf);
  }
  return "<anonymous>";
}

/**
 * The marker may sit on the function's first line or anywhere in the comments
 * above it, or above the statement or member holding it (an arrow assigned to
 * a const is excused by a comment above the const).
 */
function excused(node: Node, sf: SourceFile, first: number, lines: string[]): boolean {
  let holder: Node = node;
  while (
    holder.parent &&
    !isSourceFile(holder.parent) &&
    !isBlock(holder.parent) &&
    !isClassLikeDeclaration(holder.parent) &&
    !isObjectLiteralExpression(holder.parent)
  ) {
    holder = holder.parent;
  }
  // A node's full start is just past the previous token, so from there to its start is its leading comments.
  const from = sf.getLineAndCharacterOfPosition(holder.getFullStart()).line;
  for (let i = Math.min(from, first); i <= first; i++) if (MARKER.test(lines[i] ?? "")) return true;
  return false;
}

/** Every function with more than `max` lines (first to last, inclusive) and no `// long:` marker. */
function measure(file: string, sf: SourceFile, max: number): LongFunction[] {
  const lines = sf.text.split("\n");
  const found: LongFunction[] = [];
  // Nested functions count on their own and inside their parent: a factory is long however its body is made up.
  const visit = (node: Node): void => {
    if (isFunction(node) && node.body) {
      const first = sf.getLineAndCharacterOfPosition(node.getStart(sf)).line;
      const last = sf.getLineAndCharacterOfPosition(node.getEnd()).line;
      const length = last - first + 1;
      if (length > max && !excused(node, sf, first, lines)) {
        found.push({ file, name: nameOf(node, sf), line: first + 1, lines: length });
      }
    }
    node.forEachChild(visit);
  };
  visit(sf);
  return found;
}

/**
 * The long functions of the given files (paths relative to the current
 * directory or absolute). One tsgo process parses them all as one project
 * with no resolution, so only syntax is read, not the types.
 */
export async function longFunctions(files: string[], max: number): Promise<LongFunction[]> {
  const dir = mkdtempSync(join(tmpdir(), "zoe-sizes-"));
  const api = new API({ cwd: dir });
  try {
    const config = join(dir, "tsconfig.json");
    const absolute = files.map((f) => resolve(f));
    writeFileSync(
      config,
      JSON.stringify({
        compilerOptions: { noResolve: true, types: [], allowJs: false, jsx: "preserve" },
        files: absolute,
      }),
    );
    const snapshot = await api.updateSnapshot({ openProjects: [config] });
    const project = snapshot.getProject(config) ?? snapshot.getProjects()[0];
    if (!project) throw new Error(`tsgo opened no project for ${config}`);
    const found: LongFunction[] = [];
    for (const [i, file] of files.entries()) {
      const sf = (await project.program.getSourceFile(absolute[i]!)) as SourceFile | undefined;
      if (!sf) throw new Error(`tsgo did not parse ${file}`);
      found.push(...measure(file, sf, max));
    }
    return found;
  } finally {
    await api.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

/** longFunctions() of one source text, written to a throwaway file: how the measure itself is tested. */
export async function longFunctionsOfSource(source: string, max: number): Promise<LongFunction[]> {
  const dir = mkdtempSync(join(tmpdir(), "zoe-sizes-src-"));
  try {
    const file = join(dir, "sample.ts");
    writeFileSync(file, source);
    return (await longFunctions([file], max)).map((f) => ({ ...f, file: "sample.ts" }));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Lines in a file, counting a last line that has no newline. */
export function lineCount(source: string): number {
  if (source === "") return 0;
  return source.split("\n").length - (source.endsWith("\n") ? 1 : 0);
}
