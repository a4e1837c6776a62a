// Builds @zoe-local/react from its one source, src/client/ of this
// repository: ESM for browsers (react and @supabase/supabase-js left to the
// app, shared code split out once for both entries) and the .d.ts of every
// module (tsc --emitDeclarationOnly). Run by `bun run build` and by
// `npm pack` (prepack), so a packed tarball always holds a fresh build.
import { readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";

const HERE = import.meta.dir;
const SOURCE = join(HERE, "..", "..", "src", "client");
const OUT = join(HERE, "dist");

export class PackageBuildError extends Error {
  readonly code = "package_build_failed";
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "PackageBuildError";
  }
}

export async function buildPackage(): Promise<string[]> {
  rmSync(OUT, { recursive: true, force: true });
  const result = await Bun.build({
    entrypoints: [join(SOURCE, "index.ts"), join(SOURCE, "core.ts")],
    root: SOURCE,
    outdir: OUT,
    target: "browser",
    format: "esm",
    splitting: true,
    external: ["react", "@supabase/supabase-js"],
    // Nothing from the build environment may leak into the package.
    env: "disable",
  });
  if (!result.success) {
    throw new PackageBuildError(`Cannot bundle ${SOURCE}: ${result.logs.map(String).join("; ")}`, {
      cause: result.logs,
    });
  }
  const tsc = Bun.spawnSync(
    [
      join(HERE, "..", "..", "node_modules", ".bin", "tsc"),
      "-p",
      join(HERE, "tsconfig.build.json"),
      "--pretty",
      "false",
    ],
    { cwd: HERE, stdout: "pipe", stderr: "pipe" },
  );
  if (tsc.exitCode !== 0) {
    throw new PackageBuildError(`Cannot emit the declarations of ${SOURCE}: ${tsc.stdout}${tsc.stderr}`);
  }
  // The source imports "./x.ts" (Bun and Vite run it as it is); published
  // declarations point at the "./x.js" beside them, which any resolver finds.
  for (const name of readdirSync(OUT).filter((f) => f.endsWith(".d.ts"))) {
    const path = join(OUT, name);
    writeFileSync(path, readFileSync(path, "utf8").replace(/(from\s+"\.\/[^"]+)\.ts"/g, '$1.js"'));
  }
  return result.outputs.map((o) => o.path);
}

if (import.meta.main) {
  const files = await buildPackage();
  console.error(`built ${files.length} modules and their declarations in ${OUT}`);
}
