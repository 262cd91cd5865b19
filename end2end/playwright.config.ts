// Playwright runs against the release server, started on a free port with a fresh database by
// scripts/test (E2E_PORT, E2E_DATA_DIR, E2E_SERVER_BIN), in Debian's Chromium.
import { defineConfig } from "@playwright/test";
import path from "node:path";

const port = Number(process.env.E2E_PORT || 3100);
const root = path.resolve(__dirname, "..");
const serverBin = process.env.E2E_SERVER_BIN || path.join(root, "target/release/server");
const dataDir = process.env.E2E_DATA_DIR || path.join(root, "target/e2e-data");
// Project commands run as the sandbox uid, which must reach the worktrees: not inside a 0700
// data folder (mktemp's), so beside it.
const worktreesDir = process.env.E2E_WORKTREES_DIR || `${dataDir}-worktrees`;
// A local AI server the tests start themselves; the administrator (this command line) allows it.
const upstreamPort = Number(process.env.E2E_UPSTREAM_PORT || 3101);

export default defineConfig({
  testDir: "./tests",
  globalSetup: "./global-setup.ts",
  timeout: 30_000,
  expect: { timeout: 10_000 },
  fullyParallel: false,
  workers: 1,
  // One retry in CI: "an unknown project is a 404 page" fails about one full run in two (the
  // 404 page is then served without its own Content-Security-Policy, so it does not hydrate;
  // cause not found yet, see the closing note of 2026-12-07). A retried test is reported as flaky.
  retries: process.env.CI === "true" ? 1 : 0,
  reporter: [["list"]],
  outputDir: path.join(root, "target/e2e-results"),
  use: {
    baseURL: `http://127.0.0.1:${port}`,
    trace: "retain-on-failure",
    screenshot: "only-on-failure",
    launchOptions: {
      executablePath: "/usr/bin/chromium",
      args: [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
      ],
    },
  },
  webServer: {
    // Every test signs up its own people, all from 127.0.0.1.
    command: `"${serverBin}" --site-addr 127.0.0.1:${port} --data-dir "${dataDir}" --worktrees-dir "${worktreesDir}" --sign-ups-per-address-per-hour 1000 --allow-local-endpoint 127.0.0.1:${upstreamPort}`,
    cwd: root,
    url: `http://127.0.0.1:${port}/healthz`,
    reuseExistingServer: false,
    timeout: 30_000,
    stdout: "ignore",
    stderr: "pipe",
  },
});
