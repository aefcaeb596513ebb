// The browser build: one ES module with @microsoft/signalr inside, for a page or a renderer without a bundler
// (<script type="module">import { CoTeXFeed } from "./cotex-client.js"</script>). Bundlers use dist/index.js instead
// and resolve @microsoft/signalr themselves.
import { build } from "esbuild";
import { readFile } from "node:fs/promises";
import { gzipSync } from "node:zlib";
import { fileURLToPath } from "node:url";
import { dirname, join } from "node:path";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
export const BROWSER_BUNDLE = join(root, "dist", "browser", "cotex-client.js");

await build({
  entryPoints: [join(root, "src", "index.ts")],
  outfile: BROWSER_BUNDLE,
  bundle: true,
  format: "esm",
  platform: "browser",
  target: ["es2022"],
  minify: true,
  sourcemap: true,
  legalComments: "eof",
  logLevel: "warning",
});

const bytes = await readFile(BROWSER_BUNDLE);
console.log(`dist/browser/cotex-client.js: ${(bytes.length / 1024).toFixed(1)} KB, ${(gzipSync(bytes, { level: 9 }).length / 1024).toFixed(1)} KB gzipped`);
