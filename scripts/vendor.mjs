// Copy the front-end libraries the templates load from node_modules into static/vendor/<lib>/.
// Run by `make assets` (npm ci && npm run vendor). static/vendor/ is generated and git-ignored.
import { copyFileSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const modules = join(root, "node_modules");
const target = join(root, "static", "vendor");

// library -> [source inside node_modules/<package>, destination inside static/vendor/<library>]
const FILES = {
  htmx: {
    package: "htmx.org",
    files: [["dist/htmx.min.js", "htmx.min.js"], ["LICENSE", "LICENSE"]],
  },
  alpinejs: {
    package: "alpinejs",
    files: [["dist/cdn.min.js", "alpine.min.js"]],
  },
  bootstrap: {
    package: "bootstrap",
    files: [
      ["dist/css/bootstrap.min.css", "bootstrap.min.css"],
      ["dist/css/bootstrap.min.css.map", "bootstrap.min.css.map"],
      ["dist/js/bootstrap.bundle.min.js", "bootstrap.bundle.min.js"],
      ["dist/js/bootstrap.bundle.min.js.map", "bootstrap.bundle.min.js.map"],
      ["LICENSE", "LICENSE"],
    ],
  },
  "bootstrap-icons": {
    package: "bootstrap-icons",
    files: [
      ["font/bootstrap-icons.min.css", "bootstrap-icons.min.css"],
      ["font/fonts/bootstrap-icons.woff2", "fonts/bootstrap-icons.woff2"],
      ["font/fonts/bootstrap-icons.woff", "fonts/bootstrap-icons.woff"],
      ["LICENSE", "LICENSE"],
    ],
  },
  echarts: {
    package: "echarts",
    // The "common" build has bar, line and pie charts at a third of the full build's size.
    files: [["dist/echarts.common.min.js", "echarts.min.js"], ["LICENSE", "LICENSE"]],
  },
};

const missing = [];
for (const [library, spec] of Object.entries(FILES)) {
  for (const [source] of spec.files) {
    const path = join(modules, spec.package, source);
    if (!existsSync(path) && source !== "LICENSE") missing.push(path);
  }
}
if (missing.length) {
  console.error("vendor: files not found (run `npm ci` first):\n  " + missing.join("\n  "));
  process.exit(1);
}

rmSync(target, { recursive: true, force: true });
const versions = {};
let copied = 0;
for (const [library, spec] of Object.entries(FILES)) {
  const packageJson = JSON.parse(readFileSync(join(modules, spec.package, "package.json"), "utf8"));
  versions[library] = `${spec.package}@${packageJson.version}`;
  for (const [source, destination] of spec.files) {
    const from = join(modules, spec.package, source);
    if (!existsSync(from)) continue; // a LICENSE file some releases do not ship
    const to = join(target, library, destination);
    mkdirSync(dirname(to), { recursive: true });
    copyFileSync(from, to);
    copied += 1;
  }
}
writeFileSync(join(target, "versions.json"), JSON.stringify(versions, null, 2) + "\n");
console.log(`vendor: ${copied} files into static/vendor/ (${Object.values(versions).join(", ")})`);
