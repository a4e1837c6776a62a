// Preloaded (bun --preload) where openapi-typescript runs: it prints its
// output with the TypeScript 5 compiler API, which the project's TypeScript 7
// (the native tsc) no longer ships as JavaScript. This hands it the
// `typescript5` devDependency instead; nothing else in the process is affected.
import { plugin } from "bun";

const typescript5 = Bun.resolveSync("typescript5", import.meta.dir);

plugin({
  name: "typescript5-for-openapi-typescript",
  setup(build) {
    build.onLoad({ filter: /[\\/]node_modules[\\/]typescript[\\/]lib[\\/]version\.cjs$/ }, () => ({
      contents: `import ts from ${JSON.stringify(typescript5)}; export default ts;`,
      loader: "js",
    }));
  },
});
