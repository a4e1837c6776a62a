// scripts/python-tests.ts: how `bun run test` counts the Python client's pytest run.
import { expect, test } from "bun:test";
import { writeFileSync } from "node:fs";
import { pytestCounts, runPythonTests } from "../../scripts/python-tests.ts";
import { tempDir } from "../helpers/tmp.ts";

test("pytestCounts reads passed, failed and errors from pytest's summary line", () => {
  expect(pytestCounts("....\n85 passed in 38.69s\n")).toEqual({ passed: 85, failed: 0 });
  expect(pytestCounts("== 2 failed, 80 passed, 1 skipped, 1 error in 38.1s ==")).toEqual({ passed: 80, failed: 3 });
  expect(pytestCounts("no tests ran in 0.01s")).toEqual({ passed: 0, failed: 0 });
  expect(pytestCounts("Traceback (most recent call last):")).toBeNull();
});

test("a pytest run counts its failures, and one that collects no tests (exit 5) counts as failed", async () => {
  const dir = tempDir("zoe-pytest-");
  try {
    writeFileSync(dir.file("test_mixed.py"), "def test_ok():\n    pass\n\ndef test_bad():\n    assert 1 == 2\n");
    writeFileSync(dir.file("test_empty.py"), "# no tests here\n");
    expect(await runPythonTests([dir.file("test_mixed.py")])).toEqual({ passed: 1, failed: 1, problem: null });
    expect(await runPythonTests([dir.file("test_empty.py")])).toEqual({
      passed: 0,
      failed: 1,
      problem: "pytest collected no tests",
    });
  } finally {
    dir.cleanup();
  }
});
