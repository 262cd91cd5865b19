// Builds the Monaco the app serves, from npm's `monaco-editor` (ES modules) with esbuild, into
// public/monaco/ (never committed; scripts/lib.sh runs this when Monaco, the entry or this
// script changed). Usage: node scripts/build-monaco.mjs [output folder]
//
// Output:
// - `editor.js`, the entry (app/src/editor/monaco-entry.js, with the binding app/src/editor/binding.js):
//   an ES module exporting Monaco's API;
//   it statically imports a few `chunk-<hash>.js` files, and every language's grammar is a chunk
//   fetched on first use;
// - `editor.css`, every stylesheet those modules import, and the codicon font it names;
// - one worker file per language service (`<label>.worker-<hash>.js`, classic scripts);
// - `early-<hash>.js`, the early editor (app/src/editor/early.js), which a workspace page runs
//   before its WebAssembly to show the file open last time;
// - `manifest.json`: the entry, the stylesheet, the files the entry needs before it runs (the
//   server preloads these on a workspace page: app/src/editor/preloads.rs) and the early editor.
// Files with a hash in their names never change content: the server marks them immutable.
import { build } from "esbuild";
import { mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const output = path.resolve(process.argv[2] ?? path.join(root, "public", "monaco"));
const entry = path.join(root, "app", "src", "editor", "monaco-entry.js");
const earlyEditorEntry = path.join(root, "app", "src", "editor", "early.js");

const workerEntries = {
  editor: "monaco-editor/editor/editor.worker.js",
  json: "monaco-editor/languages/features/json/json.worker.js",
  css: "monaco-editor/languages/features/css/css.worker.js",
  html: "monaco-editor/languages/features/html/html.worker.js",
  typescript: "monaco-editor/languages/features/typescript/ts.worker.js",
};

const common = {
  absWorkingDir: root,
  bundle: true,
  minify: true,
  legalComments: "none",
  logLevel: "warning",
  target: ["es2022"],
};

rmSync(output, { recursive: true, force: true });
mkdirSync(output, { recursive: true });

// Workers first: the entry needs their (hashed) names.
const workers = {};
for (const [label, source] of Object.entries(workerEntries)) {
  const result = await build({
    ...common,
    entryPoints: { [`${label}.worker`]: source },
    format: "iife",
    outdir: output,
    entryNames: "[name]-[hash]",
    metafile: true,
  });
  const files = Object.keys(result.metafile.outputs).filter((file) => file.endsWith(".js"));
  if (files.length !== 1) {
    throw new Error(`the ${label} worker built into ${files.length} files, not one`);
  }
  workers[label] = path.basename(files[0]);
}

const result = await build({
  ...common,
  entryPoints: { editor: entry },
  format: "esm",
  splitting: true,
  outdir: output,
  entryNames: "[name]",
  chunkNames: "chunk-[hash]",
  assetNames: "[name]-[hash]",
  loader: { ".ttf": "file" },
  define: { __MONACO_WORKERS__: JSON.stringify(workers) },
  metafile: true,
});

// The files the entry imports statically (transitively), entry first: what a page must have
// before Monaco runs. Dynamic imports (language grammars, language services) are left out.
const outputs = result.metafile.outputs;
const relative = (file) => path.relative(output, path.resolve(root, file)).split(path.sep).join("/");
const entryFile = Object.keys(outputs).find(
  (file) => outputs[file].entryPoint === path.relative(root, entry).split(path.sep).join("/"),
);
if (!entryFile) {
  throw new Error("esbuild reported no entry output");
}
const eager = [];
const pending = [entryFile];
while (pending.length > 0) {
  const file = pending.shift();
  if (eager.includes(file)) continue;
  eager.push(file);
  for (const imported of outputs[file].imports) {
    if (imported.kind === "import-statement" && !imported.external) {
      pending.push(imported.path);
    }
  }
}
const stylesheet = outputs[entryFile].cssBundle;
if (!stylesheet) {
  throw new Error("esbuild reported no stylesheet for the entry");
}

// The early editor imports `editor.js` by URL at run time (never bundled into it).
const early = await build({
  ...common,
  entryPoints: { early: earlyEditorEntry },
  format: "esm",
  outdir: output,
  entryNames: "[name]-[hash]",
  metafile: true,
});
const earlyFiles = Object.keys(early.metafile.outputs).filter((file) => file.endsWith(".js"));
if (earlyFiles.length !== 1) {
  throw new Error(`the early editor built into ${earlyFiles.length} files, not one`);
}

const manifest = {
  version: JSON.parse(readFileSync(path.join(root, "node_modules", "monaco-editor", "package.json"), "utf8")).version,
  entry: relative(entryFile),
  stylesheet: relative(stylesheet),
  modules: eager.map(relative),
  workers,
  early: relative(earlyFiles[0]),
};
writeFileSync(path.join(output, "manifest.json"), `${JSON.stringify(manifest, null, 2)}\n`);

const bytes = eager.reduce((sum, file) => sum + outputs[file].bytes, 0);
console.log(
  `Monaco ${manifest.version}: ${eager.length} modules before it runs (${(bytes / 1024).toFixed(0)} KiB), ` +
    `${Object.keys(outputs).length} files in ${path.relative(root, output)}`,
);

