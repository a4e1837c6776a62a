// The Python client's tests (clients/python/tests, pytest against the real
// service) for `bun run test`: finds a python3 with pytest (installing Debian's
// python3-pytest when none has it), runs them, and reads pytest's counts.
import { spawn, spawnSync } from "bun";
import { join } from "node:path";

const CLIENT_DIR = join(import.meta.dir, "..", "clients", "python");

export interface PythonResult {
  passed: number;
  failed: number;
  /** Why the tests could not run or ended without a summary (counted as one failure). */
  problem: string | null;
}

function hasPytest(python: string): boolean {
  return spawnSync([python, "-m", "pytest", "--version"], { stdout: "ignore", stderr: "ignore" }).exitCode === 0;
}

function findPython(): string | null {
  const candidates = [Bun.which("python3"), "/usr/bin/python3"].filter((p): p is string => !!p);
  for (const python of candidates) if (hasPytest(python)) return python;
  if (!existsOnPath("apt-get")) return null;
  console.log("test: installing python3-pytest for the Python client's tests");
  spawnSync(
    [
      "bash",
      "-c",
      "apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3 python3-pytest python3-venv",
    ],
    {
      stdout: "inherit",
      stderr: "inherit",
    },
  );
  return hasPytest("/usr/bin/python3") ? "/usr/bin/python3" : null;
}

function existsOnPath(command: string): boolean {
  return Bun.which(command) !== null;
}

/** pytest's final line, e.g. "2 failed, 80 passed, 1 skipped, 1 error in 38.1s". */
export function pytestCounts(output: string): { passed: number; failed: number } | null {
  // bun run test sets FORCE_COLOR=0, which pytest reads as "force colour": strip any escapes.
  const summary = output
    // biome-ignore lint/suspicious/noControlCharactersInRegex: ANSI colour escapes start with ESC
    .replace(/\x1b\[[0-9;]*m/g, "")
    .split("\n")
    .reverse()
    .find(
      (l) =>
        /\b\d+ (passed|failed|errors?|skipped|deselected)\b.* in [\d.]+s/.test(l) || /no tests ran in [\d.]+s/.test(l),
    );
  if (!summary) return null;
  const n = (word: string) => Number(new RegExp(`(\\d+) ${word}\\b`).exec(summary)?.[1] ?? 0);
  return { passed: n("passed"), failed: n("failed") + n("errors?") };
}

/** Runs pytest on `paths` (relative to clients/python; all tests when empty), echoing its output. */
export async function runPythonTests(paths: string[]): Promise<PythonResult> {
  const python = findPython();
  if (!python)
    return { passed: 0, failed: 1, problem: "no python3 with pytest (and apt-get could not install python3-pytest)" };
  console.log(`\ntest: Python client (clients/python) with ${python} -m pytest`);
  const proc = spawn([python, "-m", "pytest", "-q", "-rfE", "--color=no", ...paths], {
    cwd: CLIENT_DIR,
    stdout: "pipe",
    stderr: "pipe",
    env: { ...process.env, PYTHONDONTWRITEBYTECODE: "1" },
  });
  let text = "";
  const decoder = new TextDecoder();
  const pump = async (stream: ReadableStream<Uint8Array>, out: NodeJS.WriteStream) => {
    for await (const chunk of stream) {
      out.write(chunk);
      text += decoder.decode(chunk, { stream: true });
    }
  };
  await Promise.all([pump(proc.stdout, process.stdout), pump(proc.stderr, process.stderr)]);
  const code = await proc.exited;
  const counts = pytestCounts(text);
  // Exit 5 is "no tests collected": a suite that silently ran nothing must not pass.
  if (!counts || code !== 0) {
    const failed = counts?.failed ?? 0;
    const problem =
      code === 5 ? "pytest collected no tests" : counts ? null : `pytest exited with ${code} before its summary`;
    return { passed: counts?.passed ?? 0, failed: failed > 0 ? failed : 1, problem };
  }
  return { ...counts, problem: null };
}
