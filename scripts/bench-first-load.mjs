// First load as a person on a modest connection sees it: the release server on a free port with
// a fresh database, Debian's Chromium with the network emulated at 9 Mbit/s down, 60 ms latency
// (CDP Network.emulateNetworkConditions), a cold cache for each page. Prints, per page, the bytes
// transferred (compressed, as sent), the largest contentful paint, the time until the page is
// hydrated, and for the workspace the time until Monaco's editor is on screen (from the start of
// the page load, the file opened from the tree as soon as the page is live); with the targets
// of issue 21 (landing transfer <= 250 KB, LCP <= 1.0 s, editor ready <= 1.5 s).
//
//   node scripts/bench-first-load.mjs          (after `cargo leptos build --release --split`)
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

/** Opens `url` in a fresh context (cold cache) with the emulated network; returns the figures. */
async function measure(browser, base, url, { cookies = [], ready, open } = {}) {
  const context = await browser.newContext({ baseURL: base, serviceWorkers: "block" });
  if (cookies.length) await context.addCookies(cookies);
  const page = await context.newPage();
  const cdp = await context.newCDPSession(page);
  await cdp.send("Network.enable");
  await cdp.send("Network.setCacheDisabled", { cacheDisabled: true });
  await cdp.send("Network.emulateNetworkConditions", network);
  let transferred = 0;
  cdp.on("Network.loadingFinished", (event) => {
    transferred += event.encodedDataLength;
  });
  await page.addInitScript(() => {
    window.__lcp = 0;
    new PerformanceObserver((list) => {
      for (const entry of list.getEntries()) window.__lcp = entry.startTime;
    }).observe({ type: "largest-contentful-paint", buffered: true });
  });
  const started = Date.now();
  await page.goto(url, { waitUntil: "load" });
  await page.locator("html[data-hydrated='true']").waitFor({ timeout: 60_000 });
  const hydrated = Date.now() - started;
  let readyAt = null;
  if (ready) {
    // A fresh browser remembers no open tab: open the file from the tree, as a person would.
    if (open) await page.locator(open).click({ timeout: 60_000 });
    await page.locator(ready).first().waitFor({ state: "visible", timeout: 60_000 });
    readyAt = Date.now() - started;
  }
  await page.waitForTimeout(300);
  const lcp = await page.evaluate(() => window.__lcp);
  await context.close();
  return { transferred, lcp, hydrated, ready: readyAt };
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
  await page.goto("/projects");
  await page.locator("html[data-hydrated='true']").waitFor();
  await page.locator("#new-project").click();
  await page.locator("#project-name").fill("Bench");
  await page.locator("#project-save").click();
  await page.waitForURL(/\/projects\/[0-9a-f-]{36}$/);
  const workspace = new URL(page.url()).pathname;
  await page.locator("#new-file").click();
  await page.locator("#path-input").fill("main.rs");
  await page.locator("#path-submit").click();
  await page.locator("#monaco-host .monaco-editor").waitFor();
  const cookies = await setup.cookies();
  await setup.close();

  const rows = [
    ["landing /", await measure(browser, base, "/")],
    ["sign-in", await measure(browser, base, "/sign-in")],
    ["dashboard", await measure(browser, base, "/projects", { cookies })],
    ["workspace", await measure(browser, base, workspace, {
      cookies,
      ready: "#monaco-host .monaco-editor",
      open: ".tree-row[data-path='main.rs']",
    })],
  ];
  const kb = (bytes) => `${(bytes / 1000).toFixed(0)} KB`;
  const ms = (value) => (value === null ? "" : `${Math.round(value)} ms`);
  console.log("page        transferred   LCP        hydrated   editor ready   (9 Mbit/s, 60 ms, cold cache)");
  for (const [name, figures] of rows) {
    console.log(`${name.padEnd(12)}${kb(figures.transferred).padStart(11)}   ${ms(figures.lcp).padStart(8)}   ${ms(figures.hydrated).padStart(8)}   ${ms(figures.ready).padStart(12)}`);
  }
  const landing = rows[0][1];
  const editor = rows[3][1];
  console.log(`targets: landing transfer <= 250 KB: ${landing.transferred <= 250_000 ? "met" : "NOT MET"}; ` +
    `landing LCP <= 1.0 s: ${landing.lcp <= 1000 ? "met" : "NOT MET"}; ` +
    `workspace editor ready <= 1.5 s: ${editor.ready !== null && editor.ready <= 1500 ? "met" : "NOT MET"}`);
} finally {
  await browser.close();
  server.kill();
  rmSync(dataDir, { recursive: true, force: true });
}
