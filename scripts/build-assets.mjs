// Copies the dashboard's libraries from node_modules into public/vendor/ (served as Workers static assets,
// so nothing loads from a CDN at run time). Run by wrangler's [build] step before `wrangler dev` and
// `wrangler deploy`; plain JavaScript so any Node from 18 on runs it. public/vendor/ is not committed.
import { copyFileSync, mkdirSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const require = createRequire(join(root, "package.json"));
const packageDir = (name) => dirname(require.resolve(`${name}/package.json`));

const files = [
  ["uplot", "dist/uPlot.iife.min.js", "uplot/uPlot.iife.min.js"],
  ["uplot", "dist/uPlot.min.css", "uplot/uPlot.min.css"],
  ["uplot", "LICENSE", "uplot/LICENSE"],
  ["swagger-ui-dist", "swagger-ui-bundle.js", "swagger-ui/swagger-ui-bundle.js"],
  ["swagger-ui-dist", "swagger-ui.css", "swagger-ui/swagger-ui.css"],
  ["swagger-ui-dist", "LICENSE", "swagger-ui/LICENSE"],
];
for (const [name, from, to] of files) {
  const target = join(root, "public", "vendor", to);
  mkdirSync(dirname(target), { recursive: true });
  copyFileSync(join(packageDir(name), from), target);
}
process.stdout.write(`build-assets: ${files.length} files copied to public/vendor/\n`);
