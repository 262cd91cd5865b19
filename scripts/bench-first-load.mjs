// First load as a person on a modest connection sees it: the release server on a free port with
// a fresh database, Debian's Chromium with the network emulated at 9 Mbit/s down, 60 ms latency
// (CDP Network.emulateNetworkConditions), a cold cache for each page. Prints, per page, the bytes
// transferred (compressed, as sent), the largest contentful paint, the time until the page is
// hydrated, and for the workspace the time until Monaco shows the file's code (from the start of
// the navigation, as the page itself measures it, like LCP): a person coming back to the project
// (this browser remembers the file open last time: the early editor shows it before the
// WebAssembly runs), a browser that remembers nothing (a first visit: the project's README opens
// by itself, the early editor showing it too; then another file opened from the tree as soon as
// the page is live), and a project without a README opened from the tree; with the
// targets of issue 21 (landing transfer <= 250 KB, LCP <= 1.0 s, editor ready <= 1.5 s).
//
//   node scripts/bench-first-load.mjs [--files]   (after `cargo leptos build --release --split`;
//                                                 --files lists each page's files: bytes, and
//                                                 when each was asked for and done, in ms)
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chromium } from "@playwright/test";

const root = new URL("..", import.meta.url).pathname;
const targetDir = process.env.CARGO_TARGET_DIR || join(root, "target");
const args = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
  "--disable-background-networking", "--disable-component-update", "--disable-sync"];
const network = { offline: false, latency: 60, downloadThroughput: (9 * 1e6) / 8, uploadThroughput: (9 * 1e6) / 8 };

function freePort() {
  return new Promise((resolve) => {
    const server = createServer();
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

async function waitForServer(base) {
  const started = Date.now();
  for (;;) {
    try {
      if ((await fetch(`${base}/healthz`)).status === 200) return;
    } catch {
      // not listening yet
    }
    if (Date.now() - started > 30_000) throw new Error("the server did not start within 30 s");
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/** Opens `url` in a fresh context (cold cache) with the emulated network; returns the figures.
 * `remember` puts a workspace's remembered state into the browser's storage first (a person
 * coming back to a project); `ready` is what must be visible for the editor to count as ready,
 * after clicking `open` (which needs the live page) when given. */
async function measure(browser, base, url, { cookies = [], remember, ready, open } = {}) {
  const context = await browser.newContext({ baseURL: base, serviceWorkers: "block" });
  if (cookies.length) await context.addCookies(cookies);
  if (remember) {
    await context.addInitScript(([key, value]) => {
      if (!localStorage.getItem(key)) localStorage.setItem(key, value);
    }, remember);
  }
  const page = await context.newPage();
  const cdp = await context.newCDPSession(page);
  await cdp.send("Network.enable");
  await cdp.send("Network.setCacheDisabled", { cacheDisabled: true });
  await cdp.send("Network.emulateNetworkConditions", network);
  let transferred = 0;
  const urls = new Map();
  const files = [];
  const asked = new Map();
  cdp.on("Network.requestWillBeSent", (event) => {
    urls.set(event.requestId, event.request.url);
    asked.set(event.requestId, event.timestamp);
  });
  let firstAsked = null;
  cdp.on("Network.loadingFinished", (event) => {
    transferred += event.encodedDataLength;
    const start = asked.get(event.requestId) ?? event.timestamp;
    firstAsked = firstAsked === null ? Math.min(...asked.values()) : firstAsked;
    files.push([urls.get(event.requestId) ?? "?", event.encodedDataLength,
      Math.round((start - firstAsked) * 1000), Math.round((event.timestamp - firstAsked) * 1000)]);
  });
  if (ready) {
    // The moment the editor's lines hold the text, taken in the page (from the navigation's
    // start, as LCP is), at the next frame after it appears.
    await page.addInitScript((text) => {
      window.__editorReady = null;
      const check = () => {
        const lines = document.querySelector("#monaco-host .view-lines");
        if (window.__editorReady === null && lines && lines.textContent.replace(/\u00a0/g, " ").includes(text)) {
          window.__editorReady = -1;
          requestAnimationFrame(() => {
            window.__editorReady = performance.now();
          });
        }
      };
      new MutationObserver(check).observe(document, { childList: true, subtree: true, characterData: true });
    }, ready.text);
  }
  await page.addInitScript(() => {
    window.__hydrated = null;
    new MutationObserver(() => {
      if (window.__hydrated === null && document.documentElement?.dataset.hydrated === "true") {
        window.__hydrated = performance.now();
      }
    }).observe(document, { subtree: true, attributes: true, attributeFilter: ["data-hydrated"] });
    window.__lcp = 0;
    new PerformanceObserver((list) => {
      for (const entry of list.getEntries()) window.__lcp = entry.startTime;
    }).observe({ type: "largest-contentful-paint", buffered: true });
  });
  await page.goto(url, { waitUntil: "commit" });
  const hydration = page.locator("html[data-hydrated='true']").waitFor({ state: "attached", timeout: 60_000 });
  let readyAt = null;
  if (ready) {
    // Opening from the tree needs the live page.
    if (open) {
      await hydration;
      await page.locator(open).click({ timeout: 60_000 });
    }
    await page.locator(ready.selector).first().waitFor({ state: "visible", timeout: 60_000 });
    await page.waitForFunction(() => window.__editorReady > 0, null, { timeout: 60_000 });
    readyAt = await page.evaluate(() => window.__editorReady);
  }
  await hydration;
  await page.waitForLoadState("load");
  await page.waitForTimeout(300);
  const lcp = await page.evaluate(() => window.__lcp);
  const hydrated = await page.evaluate(() => window.__hydrated);
  await context.close();
  return { transferred, lcp, hydrated, ready: readyAt, files };
}

const port = await freePort();
const base = `http://127.0.0.1:${port}`;
const dataDir = mkdtempSync(join(tmpdir(), "async-coder-first-load-"));
const server = spawn(join(targetDir, "release/server"), ["--site-addr", `127.0.0.1:${port}`, "--data-dir", dataDir], {
  cwd: root,
  stdio: "ignore",
});
const browser = await chromium.launch({ executablePath: "/usr/bin/chromium", args });
try {
  await waitForServer(base);
  // A person with a project holding one file, to open in the workspace.
  const setup = await browser.newContext({ baseURL: base });
  const page = await setup.newPage();
  await page.goto("/sign-up");
  await page.locator("html[data-hydrated='true']").waitFor();
  await page.getByLabel("Name", { exact: true }).fill("Bench");
  await page.getByLabel("Email").fill("bench@example.com");
  await page.getByLabel("Password").fill("correct horse battery staple");
  await page.getByRole("button", { name: "Create account" }).click();
  await page.locator("#account-name").waitFor();
  /** A new project with the given files (typed into Monaco and saved); returns its path. */
  async function newProject(name, files) {
    await page.goto("/projects");
    await page.locator("html[data-hydrated='true']").waitFor();
    await page.locator("#new-project").click();
    await page.locator("#project-name").fill(name);
    await page.locator("#project-save").click();
    await page.waitForURL(/\/projects\/[0-9a-f-]{36}$/);
    for (const [path, lines] of files) {
      await page.locator("#new-file").click();
      await page.locator("#path-input").fill(path);
      await page.locator("#path-submit").click();
      await page.locator(`.tab.active[data-path='${path}']`).waitFor();
      await page.locator("#monaco-host .monaco-editor").waitFor();
      await page.locator("#monaco-host .view-lines").click();
      await page.keyboard.type(lines);
      await page.keyboard.press("Control+s");
      await page.locator(".tab .tab-dirty").first().waitFor({ state: "hidden" });
    }
    return new URL(page.url()).pathname;
  }
  const mainFile = ["main.rs", 'fn main() {\nprintln!("first load");\n'];
  const withoutReadme = await newProject("Bench without README", [mainFile]);
  const workspace = await newProject("Bench", [mainFile, ["README.md", "# Bench\n\nA project to load.\n"]]);
  // What this browser remembers of the workspace (main.rs active), for a person coming back.
  await page.locator(".tree-row[data-path='main.rs']").click();
  await page.locator(".tab.active[data-path='main.rs']").waitFor();
  const projectId = workspace.split("/").pop();
  const storageKey = `async-coder.workspace.${projectId}`;
  const remembered = await page.evaluate((key) => localStorage.getItem(key), storageKey);
  const cookies = await setup.cookies();
  await setup.close();
  const code = { selector: "#monaco-host .view-lines:has-text('first load')", text: "first load" };
  const readme = { selector: "#monaco-host .view-lines:has-text('A project to load')", text: "A project to load" };

  const rows = [
    ["landing /", await measure(browser, base, "/")],
    ["sign-in", await measure(browser, base, "/sign-in")],
    ["dashboard", await measure(browser, base, "/projects", { cookies })],
    ["workspace, file open last time", await measure(browser, base, workspace, {
      cookies,
      remember: [storageKey, remembered],
      ready: code,
    })],
    ["workspace, first visit: its README", await measure(browser, base, workspace, {
      cookies,
      ready: readme,
    })],
    ["workspace, first visit: file from tree", await measure(browser, base, workspace, {
      cookies,
      ready: code,
      open: ".tree-row[data-path='main.rs']",
    })],
    ["  no README: file from the tree", await measure(browser, base, withoutReadme, {
      cookies,
      ready: code,
      open: ".tree-row[data-path='main.rs']",
    })],
  ];
  const kb = (bytes) => `${(bytes / 1000).toFixed(1)} KB`;
  const ms = (value) => (value === null ? "" : `${Math.round(value)} ms`);
  console.log(`${"page".padEnd(38)}transferred   LCP        hydrated   editor ready   (9 Mbit/s, 60 ms, cold cache)`);
  for (const [name, figures] of rows) {
    console.log(`${name.padEnd(38)}${kb(figures.transferred).padStart(11)}   ${ms(figures.lcp).padStart(8)}   ${ms(figures.hydrated).padStart(8)}   ${ms(figures.ready).padStart(12)}`);
  }
  if (process.argv.includes("--files")) {
    for (const [name, figures] of rows) {
      console.log(`\n${name}:`);
      for (const [url, bytes, from, to] of figures.files) {
        console.log(`  ${(bytes / 1000).toFixed(1).padStart(7)} KB  ${String(from).padStart(5)}-${String(to).padEnd(5)} ms  ${url.replace(base, "")}`);
      }
    }
  }
  const landing = rows[0][1];
  const met = (figures) => (figures.ready !== null && figures.ready <= 1500 ? "met" : "NOT MET");
  console.log(`targets: landing transfer <= 250 KB: ${landing.transferred <= 250_000 ? "met" : "NOT MET"}; ` +
    `landing LCP <= 1.0 s: ${landing.lcp <= 1000 ? "met" : "NOT MET"}; ` +
    `workspace editor ready <= 1.5 s: file open last time ${met(rows[3][1])}, first visit (README) ${met(rows[4][1])}, ` +
    `first visit then a file from the tree ${met(rows[5][1])}, no README and a file from the tree ${met(rows[6][1])}`);
} finally {
  await browser.close();
  server.kill();
  rmSync(dataDir, { recursive: true, force: true });
}
