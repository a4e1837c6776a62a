// `zoe-local check-config`: validates settings without starting anything,
// exactly as the service does at start (checkConfig in src/config-check.ts): every
// error, unknown ZOE_* variables, then the effective settings, secrets masked.
import type { Command } from "../context.ts";
import { EXIT } from "../exit.ts";

export const checkConfigCommand: Command = {
  name: "check-config",
  summary: "validate settings (the environment, or --env-file) without starting",
  help: `Usage: zoe-local check-config [--env-file FILE] [--json]

Checks the settings the service would start with: the environment of this
command, with FILE's variables on top (the service's systemd EnvironmentFile,
e.g. /etc/zoe-local/zoe-local.env). Lists every error (not just the first),
warns about unknown ZOE_* variables (naming the nearest known one), then prints
the effective settings with secrets masked. Talks to no service.

Exits 0 when the settings are valid, 2 when they are not.`,
  options: {},
  async run(ctx) {
    // The service's own check; loaded only for this command (it pulls in every settings module).
    const { checkConfig, formatConfigCheck } = await import("../../config-check.ts");
    const check = checkConfig(ctx.env);
    if (ctx.json) ctx.io.out(JSON.stringify({ ok: check.ok, errors: check.errors, warnings: check.warnings }, null, 2));
    else ctx.io.out(formatConfigCheck(check));
    return check.ok ? EXIT.ok : EXIT.usage;
  },
};
