import { afterEach, expect, test } from "bun:test";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { gitCommit, readBuildInfo } from "../../src/ops/build-info.ts";
import { tempDir } from "../helpers/tmp.ts";

const ROOT = join(import.meta.dir, "..", "..");
const dirs: { cleanup(): void }[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) d.cleanup();
});

test("readBuildInfo() reads package.json's version and the commit git itself reports for this checkout", () => {
  const info = readBuildInfo(ROOT);
  const pkg = JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")) as { version: string };
  expect(info.version).toBe(pkg.version);
  expect(info.bun).toBe(Bun.version);
  expect(info.sqlite).toMatch(/^3\.\d+\.\d+$/);
  const git = Bun.spawnSync(["git", "-C", ROOT, "rev-parse", "HEAD"]);
  if (git.exitCode === 0) expect(info.commit).toBe(git.stdout.toString().trim().slice(0, 12));
});

test("gitCommit() follows a symbolic HEAD to a loose ref, to packed-refs, and takes a detached HEAD as it is", () => {
  const d = tempDir("zoe-git-");
  dirs.push(d);
  const sha = "0123456789abcdef0123456789abcdef01234567";
  mkdirSync(join(d.path, ".git", "refs", "heads"), { recursive: true });
  writeFileSync(join(d.path, ".git", "HEAD"), "ref: refs/heads/main\n");
  writeFileSync(join(d.path, ".git", "packed-refs"), `# pack-refs with: peeled\n${sha} refs/heads/main\n`);
  expect(gitCommit(d.path)).toBe(sha);
  const loose = "fedcba9876543210fedcba9876543210fedcba98";
  writeFileSync(join(d.path, ".git", "refs", "heads", "main"), `${loose}\n`);
  expect(gitCommit(d.path)).toBe(loose);
  writeFileSync(join(d.path, ".git", "HEAD"), `${sha}\n`);
  expect(gitCommit(d.path)).toBe(sha);
});

test("outside a git checkout the commit is 'unknown' and nothing throws", () => {
  const d = tempDir("zoe-nogit-");
  dirs.push(d);
  writeFileSync(join(d.path, "package.json"), JSON.stringify({ version: "9.9.9" }));
  expect(readBuildInfo(d.path)).toMatchObject({ version: "9.9.9", commit: "unknown" });
});
