// Prints the release bundle's size (raw, gzip, brotli), what each route downloads of it (the
// shell plus the route's lazily loaded chunks), and the server's start-up time (from process
// start to the first 200 on /healthz, fresh SQLite database, median of 5 runs).
import { spawn } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { brotliCompressSync, constants, gzipSync } from "node:zlib";

const root = new URL("..", import.meta.url).pathname;
const targetDir = process.env.CARGO_TARGET_DIR || join(root, "target");
const pkg = join(root, "target/site/pkg");

function sizes(file) {
  const bytes = readFileSync(file);
  const gzip = gzipSync(bytes, { level: 9 }).length;
  const brotli = brotliCompressSync(bytes, {
    params: { [constants.BROTLI_PARAM_QUALITY]: 11 },
  }).length;
  return { raw: bytes.length, gzip, brotli };
}

const kb = (n) => `${(n / 1024).toFixed(1)} KiB`;
const budget = 200 * 1024;
let total = { raw: 0, gzip: 0, brotli: 0 };
// The built files' names may carry content hashes (async-coder.<hash>.wasm).
const built = readdirSync(pkg);
const builtName = (extension) =>
  built.find((file) => new RegExp(`^async-coder(\\.[A-Za-z0-9_-]+)?\\.${extension}$`).test(file) && !file.includes("_bg"))
  ?? built.find((file) => file.startsWith("async-coder") && file.endsWith(`.${extension}`));
for (const name of ["wasm", "js", "css"].map(builtName)) {
  const s = sizes(join(pkg, name));
  total = { raw: total.raw + s.raw, gzip: total.gzip + s.gzip, brotli: total.brotli + s.brotli };
  console.log(`${name.padEnd(22)} raw ${kb(s.raw).padStart(10)}  gzip ${kb(s.gzip).padStart(10)}  brotli ${kb(s.brotli).padStart(10)}`);
}
console.log(`${"shell total".padEnd(22)} raw ${kb(total.raw).padStart(10)}  gzip ${kb(total.gzip).padStart(10)}  brotli ${kb(total.brotli).padStart(10)}  (aim: brotli <= ${kb(budget)}: ${total.brotli <= budget ? "met" : "NOT MET"})`);

// Per route: the shell plus the lazily loaded chunks the route's view needs (`--split`; the
// manifest maps each `#[lazy]` function to its chunk files, by their hashed names). The landing
// page is in the shell; the other pages add the chunk loader script and their chunks.
const manifestName = built.find((file) => /^__wasm_split_manifest(\.[A-Za-z0-9_-]+)?\.json$/.test(file));
if (manifestName) {
  const manifest = JSON.parse(readFileSync(join(pkg, manifestName), "utf8"));
  const loaderName = built.find((file) => /^__wasm_split\.[A-Za-z0-9_-]+\.js$/.test(file));
  const loader = loaderName ? sizes(join(pkg, loaderName)) : { raw: 0, gzip: 0, brotli: 0 };
  const chunkNames = Object.values(manifest).flat();
  const chunks = new Map(
    [...new Set(chunkNames)].map((name) => {
      const file = built.find((candidate) => candidate === `${name}.wasm`);
      return [name, file ? sizes(join(pkg, file)) : { raw: 0, gzip: 0, brotli: 0 }];
    }),
  );
  const allChunks = [...chunks.values()].reduce((sum, size) => sum + size.brotli, 0);
  console.log(`lazily loaded chunks   ${chunks.size} files, brotli ${kb(allChunks)} in all`);
  // The route types of app/src/pages/lazy.rs, as their loaders are named in the manifest.
  const routes = [
    ["landing /", null],
    ["sign-in", "sign_in_route"],
    ["sign-up", "sign_up_route"],
    ["dashboard", "projects_route"],
    ["workspace", "workspace_route"],
    ["chat", "chat_route"],
    ["settings", "settings_route"],
    ["providers", "providers_route"],
    ["account", "account_route"],
    ["admin", "admin_route"],
  ];
  const kbText = (n) => `${(n / 1000).toFixed(0)} KB`;
  console.log("route          shell + its chunks, brotli (as sent)");
  for (const [label, key] of routes) {
    let brotli = total.brotli;
    let files = 0;
    if (key) {
      const split = Object.keys(manifest).find((name) => name.replace(/_/g, "").includes(key.replace(/_/g, "")));
      if (!split) {
        console.log(`${label.padEnd(15)}no chunk named like ${key} in ${manifestName}`);
        continue;
      }
      brotli += loader.brotli;
      for (const name of manifest[split]) {
        brotli += chunks.get(name)?.brotli ?? 0;
        files += 1;
      }
    }
    console.log(`${label.padEnd(15)}${kbText(brotli).padStart(7)}  (${kb(brotli)}; ${files} chunk file${files === 1 ? "" : "s"})`);
  }
} else {
  console.log("lazily loaded chunks   none (built without --split): every route loads the whole shell");
}
// Monaco (scripts/build-monaco.mjs): what a page that opens an editor loads before Monaco runs
// (the manifest's modules and the stylesheet), on top of the route's WebAssembly.
const monacoFolder = join(root, "target/site/monaco");
try {
  const monaco = JSON.parse(readFileSync(join(monacoFolder, "manifest.json"), "utf8"));
  let eager = { raw: 0, gzip: 0, brotli: 0 };
  for (const file of [...monaco.modules, monaco.stylesheet]) {
    const s = sizes(join(monacoFolder, file));
    eager = { raw: eager.raw + s.raw, gzip: eager.gzip + s.gzip, brotli: eager.brotli + s.brotli };
  }
  console.log(`Monaco ${monaco.version} before it runs  ${monaco.modules.length} modules + stylesheet: raw ${kb(eager.raw)}  gzip ${kb(eager.gzip)}  brotli ${kb(eager.brotli)}`);
} catch (error) {
  console.log(`Monaco                 not measured (${error.message})`);
}
console.log(`server binary          ${(statSync(join(targetDir, "release/server")).size / 1048576).toFixed(1)} MiB`);

function freePort() {
  return new Promise((resolve) => {
    const server = createServer();
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

async function startOnce() {
  const port = await freePort();
  const dataDir = mkdtempSync(join(tmpdir(), "async-coder-start-"));
  const started = process.hrtime.bigint();
  const child = spawn(join(targetDir, "release/server"), ["--site-addr", `127.0.0.1:${port}`, "--data-dir", dataDir], {
    cwd: root,
    stdio: "ignore",
  });
  try {
    for (;;) {
      try {
        const response = await fetch(`http://127.0.0.1:${port}/healthz`);
        if (response.status === 200) break;
      } catch {
        // not listening yet
      }
      if (process.hrtime.bigint() - started > 20_000_000_000n) throw new Error("the server did not start within 20 s");
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
    return Number(process.hrtime.bigint() - started) / 1e6;
  } finally {
    child.kill("SIGTERM");
    await new Promise((resolve) => child.on("exit", resolve));
    rmSync(dataDir, { recursive: true, force: true });
  }
}

const runs = [];
for (let i = 0; i < 5; i++) runs.push(await startOnce());
runs.sort((a, b) => a - b);
console.log(`server start-up        median ${runs[2].toFixed(0)} ms (min ${runs[0].toFixed(0)}, max ${runs[4].toFixed(0)}; fresh SQLite database, migrations included)`);
