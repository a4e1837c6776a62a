// `--env-file /etc/zoe-local/zoe-local.env`: the settings file systemd hands
// the service (EnvironmentFile=), read the way systemd reads it, so the CLI
// finds the service's port and token, and check-config checks what will run.
import { readFileSync } from "node:fs";
import { CliError, EXIT } from "./exit.ts";

/** KEY=VALUE lines; `#` and `;` comments; an optional `export `; single or double quotes around the value. */
export function parseEnvFile(text: string, where = "env file"): Record<string, string> {
  const out: Record<string, string> = {};
  text.split(/\r?\n/).forEach((raw, i) => {
    const line = raw.trim();
    if (line === "" || line.startsWith("#") || line.startsWith(";")) return;
    const m = /^(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*)$/.exec(line);
    if (!m) throw new CliError(EXIT.usage, `${where}:${i + 1}: expected KEY=VALUE, got "${line.slice(0, 60)}"`);
    let value = m[2]!;
    const quoted = /^(["'])(.*)\1$/.exec(value);
    if (quoted) value = quoted[1] === '"' ? quoted[2]!.replace(/\\(["\\$`])/g, "$1") : quoted[2]!;
    out[m[1]!] = value;
  });
  return out;
}

export function readEnvFile(path: string): Record<string, string> {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (error) {
    const code = (error as { code?: string }).code;
    const why =
      code === "ENOENT"
        ? "no such file"
        : code === "EACCES"
          ? "permission denied (it is root's: try sudo)"
          : (error as Error).message;
    throw new CliError(EXIT.usage, `cannot read --env-file ${path}: ${why}`, { cause: error });
  }
  return parseEnvFile(text, path);
}
