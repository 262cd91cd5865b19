// Prints the release bundle's size (raw, gzip, brotli) and the server's start-up time (from
// process start to the first 200 on /healthz, fresh SQLite database, median of 5 runs).
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
