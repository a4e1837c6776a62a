// Format and lint checks: Biome for TypeScript, JSON and CSS (biome.json), ruff
// for the Python client and the bench's Python scripts (ruff.toml). `bun run
// lint` runs them alone; `bun run test` runs them with the full suite and
// counts each as one test, so a tree that is not formatted fails CI.
import { spawnSync } from "bun";
import { join } from "node:path";

const ROOT = join(import.meta.dir, "..");

export interface LintCheck {
  name: string;
  passed: boolean;
  /** What the tool printed when it failed, or why it could not run. */
  output: string;
}

function ruffCommand(): string[] | null {
  if (Bun.which("ruff")) return ["ruff"];
  for (const python of ["python3", "/usr/bin/python3"]) {
    if (spawnSync([python, "-m", "ruff", "--version"], { stdout: "ignore", stderr: "ignore" }).exitCode === 0) {
      return [python, "-m", "ruff"];
    }
  }
  return null;
}

function run(name: string, cmd: string[] | null, why: string): LintCheck {
  if (!cmd) return { name, passed: false, output: why };
  const r = spawnSync(cmd, { cwd: ROOT, stdout: "pipe", stderr: "pipe", env: { ...process.env, NO_COLOR: "1" } });
  const output = `${r.stdout.toString()}${r.stderr.toString()}`.trim();
  return { name, passed: r.exitCode === 0, output };
}

export function runLintChecks(): LintCheck[] {
  const biome = join(ROOT, "node_modules", ".bin", "biome");
  const ruff = ruffCommand();
  const noRuff = "ruff is not installed (pip install ruff; .ci/run installs it)";
  return [
    run("biome ci (format and lint)", [biome, "ci", "--colors=off", "."], ""),
    run("ruff check", ruff && [...ruff, "check", "."], noRuff),
    run("ruff format --check", ruff && [...ruff, "format", "--check", "."], noRuff),
  ];
}

if (import.meta.main) {
  const checks = runLintChecks();
  for (const c of checks) {
    console.log(`${c.passed ? "ok  " : "FAIL"} ${c.name}`);
    if (!c.passed) console.log(c.output);
  }
  process.exit(checks.every((c) => c.passed) ? 0 : 1);
}
