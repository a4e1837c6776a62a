// `bun run test`: runs every test with `bun test`, then the Python client's
// pytest suite, and ends with the one line CI reads, `tests: N passed, N failed`
// (both suites counted). Extra arguments go to bun test; arguments starting
// with clients/python select Python tests instead, and any other argument
// (a file, a folder) runs only bun test.
import { spawn, spawnSync } from "bun";
import { existsSync } from "node:fs";
import { ensureFunctionDependencies } from "./supabase-local/deno.ts";
import { runLintChecks } from "./lint.ts";
import { runPythonTests } from "./python-tests.ts";

// The dashboard's browser tests drive Debian's Chromium; install it when missing
// (apt as root; never a downloaded browser build).
if (!existsSync("/usr/bin/chromium")) {
  console.log("test: installing chromium for the browser tests");
  const apt = spawnSync(
    ["bash", "-c", "apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium"],
    { stdout: "inherit", stderr: "inherit" },
  );
  if (apt.exitCode !== 0) console.error("test: could not install chromium; the browser tests will fail");
}

// The alert rules and /metrics are checked with promtool (Debian's prometheus
// package); a policy-rc.d keeps apt from starting a Prometheus server.
if (!Bun.which("promtool")) {
  console.log("test: installing prometheus for promtool");
  const script = [
    "own=''; if [ ! -e /usr/sbin/policy-rc.d ]; then printf '#!/bin/sh\\nexit 101\\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d && own=1; fi",
    "apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus; rc=$?",
    'if [ -n "$own" ]; then rm -f /usr/sbin/policy-rc.d; fi; exit $rc',
  ].join("\n");
  const apt = spawnSync(["bash", "-c", script], { stdout: "inherit", stderr: "inherit" });
  if (apt.exitCode !== 0)
    console.error("test: could not install prometheus; the promtool tests will be skipped (and fail under CI)");
}

// The Edge Function's npm packages, fetched before the suite (a cold Deno cache
// on a new machine): if Deno cannot reach or trust the registry, this says which
// package and why up front and again above the summary, so the Deno test files
// failing with that same message are not a mystery.
const denoProblem = await ensureFunctionDependencies("zoe-ingest").then(
  () => null,
  (e: Error) => e.message,
);
if (denoProblem) console.error(`test: ${denoProblem}\n`);

const allArgs = process.argv.slice(2);
const pythonPaths = allArgs
  .filter((a) => a.startsWith("clients/python"))
  .map((a) => a.replace(/^clients\/python\/?/, ""));
const args = allArgs.filter((a) => !a.startsWith("clients/python"));
const runBun = args.length > 0 || pythonPaths.length === 0;
const runPython = allArgs.length === 0 || pythonPaths.length > 0;
// bunfig's [test] timeout is not honoured by Bun 1.4.5; real servers, Postgres
// and Chromium need more than the 5 s default on 2 cores.
const timeout = args.some((a) => a.startsWith("--timeout")) ? [] : ["--timeout", "60000"];
const proc = spawn(runBun ? ["bun", "test", ...timeout, ...args] : ["true"], {
  stdout: "pipe",
  stderr: "pipe",
  env: { ...process.env, FORCE_COLOR: "0" },
});

let text = "";
const decoder = new TextDecoder();
async function pump(stream: ReadableStream<Uint8Array>, out: NodeJS.WriteStream) {
  for await (const chunk of stream) {
    out.write(chunk);
    text += decoder.decode(chunk, { stream: true });
  }
}
await Promise.all([pump(proc.stdout, process.stdout), pump(proc.stderr, process.stderr)]);
const code = await proc.exited;

const count = (word: string) =>
  Number(
    /^\s*(\d+) (pass|fail)\s*$/m.exec(
      text
        .split("\n")
        .filter((l) => new RegExp(`^\\s*\\d+ ${word}\\s*$`).test(l))
        .at(-1) ?? "",
    )?.[1] ?? 0,
  );
const python = runPython
  ? await runPythonTests(pythonPaths.filter((p) => p !== ""))
  : { passed: 0, failed: 0, problem: null };
// The full run also checks formatting and lint (Biome, ruff), one test each.
const lint = allArgs.length === 0 ? runLintChecks() : [];
for (const c of lint) console.log(`${c.passed ? "(pass)" : "(fail)"} ${c.name}${c.passed ? "" : `\n${c.output}`}`);
const lintFailed = lint.filter((c) => !c.passed).length;
const passed = count("pass") + python.passed + lint.length - lintFailed;
const bunFailed = count("fail");
// A crash before bun printed its summary still has to count as a failure.
const failures = (code !== 0 && bunFailed === 0 ? 1 : bunFailed) + python.failed + lintFailed;
if (python.problem) console.error(`test: Python client tests: ${python.problem}`);
if (denoProblem)
  console.error(`test: the tests that run the Edge Function failed because: ${denoProblem.split("\n")[0]}`);
console.log(`tests: ${passed} passed, ${failures} failed`);
process.exit(code === 0 && failures === 0 && passed > 0 ? 0 : 1);
