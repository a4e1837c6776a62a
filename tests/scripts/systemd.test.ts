// scripts/systemd/zoe-local.service as README's "Install" steps put it on a
// box, checked with `systemd-analyze verify` in a throwaway root: with Bun
// where `npm i -g bun` puts it for npm's usual prefixes, and where README's
// copy command puts it from anywhere else.
import { describe, expect, test } from "bun:test";
import { chmodSync, cpSync, existsSync, mkdirSync, readFileSync, symlinkSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { startService } from "../helpers/service.ts";
import { tempDir } from "../helpers/tmp.ts";

const ROOT = join(import.meta.dir, "..", "..");
const UNIT = join(ROOT, "scripts", "systemd", "zoe-local.service");
const HOST_UNITS = "/usr/lib/systemd/system";
const analyzable = Bun.which("systemd-analyze") !== null && existsSync(HOST_UNITS);

/** A root with the host's unit files (verify needs the targets), the unit installed as README's step 4 does. */
function box() {
  const dir = tempDir("zoe-systemd-root-");
  cpSync(HOST_UNITS, join(dir.path, HOST_UNITS), { recursive: true, verbatimSymlinks: true });
  mkdirSync(join(dir.path, "etc", "systemd", "system"), { recursive: true });
  cpSync(UNIT, join(dir.path, "etc", "systemd", "system", "zoe-local.service"));
  const executable = (path: string) => {
    mkdirSync(dirname(join(dir.path, path)), { recursive: true });
    writeFileSync(join(dir.path, path), "#!/bin/sh\n");
    chmodSync(join(dir.path, path), 0o755);
  };
  return {
    dir,
    /** What `npm i -g bun` leaves under a prefix: the binary in lib/node_modules, a relative link in bin/. */
    npmInstall(prefix: string) {
      executable(join(prefix, "lib", "node_modules", "bun", "bin", "bun.exe"));
      mkdirSync(join(dir.path, prefix, "bin"), { recursive: true });
      symlinkSync("../lib/node_modules/bun/bin/bun.exe", join(dir.path, prefix, "bin", "bun"));
    },
    executable,
    verify() {
      const r = Bun.spawnSync(
        ["systemd-analyze", "verify", `--root=${dir.path}`, "/etc/systemd/system/zoe-local.service"],
        { stdout: "pipe", stderr: "pipe" },
      );
      return { code: r.exitCode, out: `${r.stdout}${r.stderr}`.trim() };
    },
  };
}

/** docs/operations.md's step 1 of "Install". */
function installStep(): string {
  const readme = readFileSync(join(ROOT, "docs", "operations.md"), "utf8");
  const install = readme.slice(readme.indexOf("### Install"));
  return install.slice(0, install.indexOf("# 2."));
}

describe.skipIf(!analyzable)("the systemd unit where README's install step puts Bun", () => {
  for (const prefix of ["/usr", "/usr/local"]) {
    test(`npm i -g bun with npm's prefix ${prefix} (${prefix}/bin/bun): systemd-analyze verify passes`, () => {
      const b = box();
      try {
        expect(installStep()).toContain(`${prefix}/bin/bun`);
        b.npmInstall(prefix);
        expect(b.verify()).toEqual({ code: 0, out: "" });
      } finally {
        b.dir.cleanup();
      }
    });
  }

  test("Bun from the official installer (~/.bun/bin): verify fails until README's copy command puts it in /usr/local/bin", () => {
    const b = box();
    try {
      b.executable("/root/.bun/bin/bun");
      expect(b.verify()).toMatchObject({ code: 1, out: expect.stringContaining("Command bun is not executable") });
      const copy = /^# (install -m 0755 .*\/usr\/local\/bin\/bun)$/m.exec(installStep())?.[1];
      expect(copy).toBeDefined();
      // Run as written, with the box's root in front of the destination (which every box has).
      mkdirSync(join(b.dir.path, "usr", "local", "bin"), { recursive: true });
      const r = Bun.spawnSync(
        ["bash", "-c", copy!.replace(" /usr/local/bin/bun", ` ${b.dir.path}/usr/local/bin/bun`)],
        {
          env: { PATH: `${b.dir.path}/root/.bun/bin:/usr/bin:/bin` },
          stderr: "pipe",
        },
      );
      expect({ code: r.exitCode, err: r.stderr.toString() }).toEqual({ code: 0, err: "" });
      expect(b.verify()).toEqual({ code: 0, out: "" });
    } finally {
      b.dir.cleanup();
    }
  });
});

test("the env template README's step 3 installs starts the service as it is (only the path and port moved for the test)", async () => {
  // systemd's EnvironmentFile: KEY=VALUE lines, # comments.
  const template = readFileSync(join(ROOT, "scripts", "systemd", "zoe-local.env.example"), "utf8");
  const settings = Object.fromEntries(
    template
      .split("\n")
      .filter((l) => /^[A-Z_][A-Z0-9_]*=/.test(l))
      .map((l) => [l.slice(0, l.indexOf("=")), l.slice(l.indexOf("=") + 1)]),
  );
  expect(settings.ZOE_DB_PATH).toBe("/var/lib/zoe-local/zoe-local.db");
  const dir = tempDir("zoe-env-template-");
  try {
    const svc = await startService({
      dbPath: dir.file("zoe.db"),
      env: { ...settings, ZOE_DB_PATH: dir.file("zoe.db"), PORT: "0" },
    });
    try {
      expect(svc.output()).toContain('"synchronous":"FULL"');
      expect((await fetch(`${svc.url}/ready`)).status).toBe(200);
    } finally {
      await svc.kill("SIGTERM");
    }
  } finally {
    dir.cleanup();
  }
});
