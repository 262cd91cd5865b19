import { chromium } from "@playwright/test";
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { test, expect, hydrated, allowConsoleError, signUp } from "./fixtures";

test("the landing page's text is in the server's HTML, before any script runs", async ({ request, browser }) => {
  const response = await request.get("/");
  expect(response.status()).toBe(200);
  const html = await response.text();
  expect(html).toContain("Your AI coding workspace, on your own server.");
  expect(html).toContain("Ways to work with AI");
  expect(html).toContain('data-theme="system"');

  const context = await browser.newContext({ javaScriptEnabled: false });
  const page = await context.newPage();
  await page.goto("/");
  await expect(page.getByRole("heading", { level: 1 })).toHaveText("Your AI coding workspace, on your own server.");
  // Every mode is there, the async agent too.
  await expect(page.getByText("Async", { exact: true })).toBeVisible();
  await context.close();
});

test("the page hydrates: the theme toggle changes the page and survives a reload", async ({ page }) => {
  await page.goto("/");
  await hydrated(page);
  const html = page.locator("html");
  await expect(html).toHaveAttribute("data-theme", "system");

  const toggle = page.locator("#theme-toggle");
  await toggle.click();
  await expect(html).toHaveAttribute("data-theme", "light");
  await toggle.click();
  await expect(html).toHaveAttribute("data-theme", "dark");
  const darkBackground = await page.evaluate(() => getComputedStyle(document.body).backgroundColor);
  expect(darkBackground).toBe("rgb(11, 17, 32)");

  // The server renders the saved theme itself: right from the first byte, no flash.
  await expect
    .poll(async () => (await page.context().cookies()).find((cookie) => cookie.name === "theme")?.value)
    .toBe("dark");
  const response = await page.reload();
  expect(await response!.text()).toContain('data-theme="dark"');
  await expect(html).toHaveAttribute("data-theme", "dark");
  await hydrated(page);
  await expect(toggle).toHaveAttribute("data-theme-choice", "dark");
});

test("an unknown address gets the 404 page with status 404", async ({ page, console }) => {
  // Chromium logs the document's own 404 status as a console error.
  allowConsoleError(console, /status of 404 \(Not Found\) \(http:\/\/[^/]+\/no\/such\/page\)$/);
  const response = await page.goto("/no/such/page");
  expect(response!.status()).toBe(404);
  await expect(page.getByRole("heading", { name: "This page does not exist" })).toBeVisible();
  await hydrated(page);
  await page.getByRole("link", { name: "Go to the home page" }).click();
  await expect(page.getByRole("heading", { level: 1 })).toHaveText("Your AI coding workspace, on your own server.");
});

test("the app is installable: Chromium's own check finds no errors", async ({ browserName, baseURL }, testInfo) => {
  // Installability is never granted in incognito, and every ordinary Playwright context is one:
  // use a persistent profile, as a person's browser would.
  const profile = mkdtempSync(path.join(tmpdir(), "async-coder-pwa-"));
  const launch = testInfo.project.use.launchOptions!;
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: launch.executablePath,
    args: launch.args,
    baseURL,
  });
  try {
    const page = context.pages()[0] ?? (await context.newPage());
    const errors: string[] = [];
    page.on("console", (message) => {
      if (message.type() === "error") errors.push(message.text());
    });
    await page.goto("/");
    await hydrated(page);
    await page.evaluate(async () => {
      await navigator.serviceWorker.ready;
    });
    const session = await context.newCDPSession(page);
    const { installabilityErrors } = await session.send("Page.getInstallabilityErrors");
    expect(installabilityErrors).toEqual([]);
    const manifest = await session.send("Page.getAppManifest");
    expect(manifest.errors).toEqual([]);
    expect(errors).toEqual([]);
    expect(browserName).toBe("chromium");
  } finally {
    await context.close();
    rmSync(profile, { recursive: true, force: true });
  }
});

test("the service worker keeps the static files and the offline page, never a page", async ({ page }) => {
  await page.goto("/");
  await hydrated(page);
  const cached = await page.evaluate(async () => {
    await navigator.serviceWorker.ready;
    const names = await caches.keys();
    const cache = await caches.open(names.find((name) => name.startsWith("async-coder-static-"))!);
    return (await cache.keys()).map((request) => new URL(request.url).pathname).sort();
  });
  expect(cached).toEqual(expect.arrayContaining(["/offline.html", "/manifest.webmanifest"]));
  expect(cached).not.toContain("/");
});

test("offline, a reload shows the offline page: never another page, nobody's name", async ({ browser }) => {
  // A server of this test's own, stopped to go offline (the browser's offline emulation does
  // not reach the service worker's own requests).
  const port = 40000 + Math.floor(Math.random() * 20000);
  const dataDir = mkdtempSync(path.join(tmpdir(), "async-coder-offline-"));
  const root = path.resolve(__dirname, "../..");
  const binary = process.env.E2E_SERVER_BIN || path.join(root, "target/release/server");
  const start = () =>
    spawn(binary, ["--site-addr", `127.0.0.1:${port}`, "--data-dir", dataDir], { cwd: root, stdio: "ignore" });
  const waitUntilUp = async () => {
    for (let attempt = 0; attempt < 200; attempt++) {
      try {
        if ((await fetch(`http://127.0.0.1:${port}/healthz`)).ok) return;
      } catch {
        // not yet
      }
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    throw new Error("the test's server did not start");
  };
  let server = start();
  const context = await browser.newContext({ baseURL: `http://127.0.0.1:${port}` });
  const page = await context.newPage();
  const errors: string[] = [];
  page.on("console", (message) => {
    if (message.type() === "error") errors.push(message.text());
  });
  page.on("pageerror", (error) => errors.push(error.message));
  try {
    await waitUntilUp();
    await signUp(page, "Offa");
    await page.goto("/projects");
    await hydrated(page);
    await page.evaluate(async () => {
      await navigator.serviceWorker.ready;
    });
    await expect.poll(() => page.evaluate(() => navigator.serviceWorker.controller !== null)).toBe(true);

    server.kill("SIGKILL");
    await new Promise((resolve) => server.once("exit", resolve));
    await page.reload();
    await expect(page.getByRole("heading", { name: "You are offline" })).toBeVisible();
    expect(await page.content()).not.toContain("Offa");
    await page.goto("/projects/0191c1a0-0000-7000-8000-000000000000");
    await expect(page.getByRole("heading", { name: "You are offline" })).toBeVisible();
    expect(errors.filter((error) => /panicked|Content Security Policy/.test(error))).toEqual([]);

    server = start();
    await waitUntilUp();
    await page.goto("/projects");
    await expect(page.locator("#account-name")).toContainText("Offa");
  } finally {
    server.kill("SIGKILL");
    await context.close();
    rmSync(dataDir, { recursive: true, force: true });
  }
});

test("health, readiness and metrics answer", async ({ request }) => {
  expect((await request.get("/healthz")).status()).toBe(200);
  const ready = await request.get("/readyz");
  expect(ready.status()).toBe(200);
  const metrics = await (await request.get("/metrics")).text();
  expect(metrics).toContain("http_requests_total");
  expect(metrics).toContain('db_pool_connections{backend="sqlite"}');
});
