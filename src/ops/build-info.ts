// What is running: the package version, the git commit of the checkout the
// service runs from, Bun's and SQLite's versions. Read once at start (by
// main.ts) for zoe_build_info and GET /local/status, so an operator can tell
// which build answered without logging into the box.
import { Database } from "bun:sqlite";
import { existsSync, readFileSync, statSync } from "node:fs";
import { isAbsolute, join } from "node:path";

export interface BuildInfo {
  version: string;
  /** Short commit of the checkout, or "unknown" (not a git checkout, e.g. a tarball install). */
  commit: string;
  bun: string;
  sqlite: string;
}

function readText(path: string): string | null {
  try {
    return readFileSync(path, "utf8").trim();
  } catch {
    return null;
  }
}

/** The git directory of `root`: `.git/` itself, or the one a worktree's `.git` file points to. */
function gitDir(root: string): string | null {
  const dotGit = join(root, ".git");
  if (!existsSync(dotGit)) return null;
  if (statSync(dotGit).isDirectory()) return dotGit;
  const m = /^gitdir:\s*(.+)$/m.exec(readText(dotGit) ?? "");
  if (!m) return null;
  return isAbsolute(m[1]!) ? m[1]! : join(root, m[1]!);
}

/**
 * The commit HEAD points at, read from the files (no git binary needed on the
 * box): a detached HEAD, a loose ref (in the worktree's or the common git
 * dir), or packed-refs.
 */
export function gitCommit(root: string): string | null {
  const dir = gitDir(root);
  if (!dir) return null;
  const head = readText(join(dir, "HEAD"));
  if (!head) return null;
  if (/^[0-9a-f]{40,64}$/.test(head)) return head;
  const ref = /^ref:\s*(\S+)$/.exec(head)?.[1];
  if (!ref) return null;
  const common = readText(join(dir, "commondir"));
  const dirs = [dir, ...(common ? [isAbsolute(common) ? common : join(dir, common)] : [])];
  for (const d of dirs) {
    const loose = readText(join(d, ref));
    if (loose && /^[0-9a-f]{40,64}$/.test(loose)) return loose;
  }
  for (const d of dirs) {
    for (const line of (readText(join(d, "packed-refs")) ?? "").split("\n")) {
      const [sha, name] = line.split(" ");
      if (name === ref && sha && /^[0-9a-f]{40,64}$/.test(sha)) return sha;
    }
  }
  return null;
}

function sqliteVersion(): string {
  const db = new Database(":memory:");
  try {
    return (db.query("SELECT sqlite_version() AS v").get() as { v: string }).v;
  } finally {
    db.close();
  }
}

/** `root`: the folder holding package.json (and .git, when the service runs from a checkout). */
export function readBuildInfo(root: string): BuildInfo {
  let version = "unknown";
  try {
    version = String(
      (JSON.parse(readFileSync(join(root, "package.json"), "utf8")) as { version?: unknown }).version ?? "unknown",
    );
  } catch {
    // A broken package.json is not a reason to refuse to start.
  }
  return { version, commit: gitCommit(root)?.slice(0, 12) ?? "unknown", bun: Bun.version, sqlite: sqliteVersion() };
}
