// A new person's first hour, at a phone's, a laptop's and a desktop's size: where sign-in leads,
// what an empty project says, which modes the plan offers, what a non-admin sees, that nothing
// overflows sideways, that the workspace fits a laptop with chat and history open. Screenshots go
// to target/e2e-results/screens for a person to look at.
import path from "node:path";
import { Page } from "@playwright/test";
import { test, expect, hydrated, allowConsoleError, signUp, password } from "./fixtures";

const screens = path.resolve(__dirname, "../../target/e2e-results/screens");
const sizes = [
  { name: "phone", width: 390, height: 844 },
  { name: "laptop", width: 1280, height: 800 },
  { name: "desktop", width: 1440, height: 900 },
];

async function shot(page: Page, name: string) {
  await page.screenshot({ path: path.join(screens, `${name}.png`) });
}

async function noSidewaysOverflow(page: Page, where: string) {
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  expect(overflow, `${where} overflows sideways by ${overflow}px`).toBeLessThanOrEqual(0);
}

async function newProject(page: Page, name: string) {
  await page.goto("/projects");
  await hydrated(page);
  await page.locator("#new-project").click();
  // The dialog opens with focus on its first field.
  await expect(page.locator("#project-name")).toBeFocused();
  await page.locator("#project-name").fill(name);
  await page.locator("#project-save").click();
  await expect(page).toHaveURL(/\/projects\/[0-9a-f-]{36}$/);
  await expect(page.locator(".workspace-project")).toHaveText(name);
}

for (const size of sizes) {
  test(`${size.name}: signing up leads to the dashboard, a new project opens and says how to start`, async ({ page }) => {
    await page.setViewportSize({ width: size.width, height: size.height });
    await signUp(page, "First");
    await expect(page).toHaveURL(/\/projects$/);
    await shot(page, `${size.name}-dashboard`);
    await noSidewaysOverflow(page, "the dashboard");
    await newProject(page, "Hello");
    await expect(page.locator("#empty-project")).toBeVisible();
    await expect(page.locator("#empty-project")).toContainText("+ File");
    await shot(page, `${size.name}-empty-project`);
    await noSidewaysOverflow(page, "the workspace");
  });

  test(`${size.name}: no page overflows sideways, and the navigation is reachable`, async ({ page }) => {
    await page.setViewportSize({ width: size.width, height: size.height });
    for (const url of ["/", "/sign-in", "/sign-up"]) {
      await page.goto(url);
      await hydrated(page);
      await noSidewaysOverflow(page, url);
    }
    await signUp(page, "Wide");
    for (const url of ["/projects", "/chat", "/tasks", "/account", "/settings", "/settings/providers"]) {
      await page.goto(url);
      await hydrated(page);
      await noSidewaysOverflow(page, url);
      await shot(page, `${size.name}${url.replaceAll("/", "-")}`);
    }
    if (size.width < 720) {
      await expect(page.locator("#main-nav")).toBeHidden();
      await page.locator("#nav-toggle").click();
      await expect(page.locator("#main-nav")).toBeVisible();
      await shot(page, `${size.name}-menu`);
      await page.locator("#main-nav").getByRole("link", { name: "Projects" }).click();
      await expect(page).toHaveURL(/\/projects$/);
    } else {
      await expect(page.locator("#main-nav")).toBeVisible();
    }
  });
}

test("the first account is the administrator on the top tier; the next ones are not and see no Administration", async ({ page, browser }) => {
  // The first account of this test server was made by an earlier test: every person here is a
  // later one, on the free plan.
  await signUp(page, "Plain");
  await page.goto("/projects");
  await hydrated(page);
  await expect(page.locator("#main-nav")).not.toContainText("Administration");
  // Modes outside the plan are shown disabled with the reason, before anything is sent.
  await page.goto("/chat");
  await hydrated(page);
  const architect = page.locator("#chat-mode option[value='architect']");
  await expect(architect).toBeDisabled();
  await expect(architect).toContainText("not in your plan");
  await expect(architect).toHaveAttribute("title", /architect mode is not part of the free plan/);
});

test("an unknown project is a 404 page with status 404", async ({ page, console }) => {
  allowConsoleError(console, /404/);
  await signUp(page, "Lost");
  const response = await page.goto("/projects/0191c1a0-0000-7000-8000-000000000000");
  expect(response!.status()).toBe(404);
  await hydrated(page);
  await expect(page.locator("h1[role='alert']")).toContainText("does not exist");
  // Only the message: the workspace itself is not shown.
  await expect(page.locator(".workspace")).toBeHidden();
  await shot(page, "unknown-project");
});

test("at 1280 px the workspace holds the tree, the editor, the chat and the history", async ({ page }) => {
  await page.setViewportSize({ width: 1280, height: 800 });
  await signUp(page, "Laptop");
  await newProject(page, "Fits");
  await page.locator("#new-file").click();
  await page.locator("#path-input").fill("src/main.rs");
  await page.locator("#path-submit").click();
  await expect(page.locator("#monaco-host .monaco-editor")).toBeVisible();
  if (await page.locator(".workspace-chat.hidden").count()) await page.locator("#toggle-chat").click();
  await expect(page.locator(".workspace-chat")).toBeVisible();
  await page.locator("#toggle-history").click();
  await expect(page.locator(".history-panel")).toBeVisible();
  await shot(page, "laptop-workspace-chat-history");
  await noSidewaysOverflow(page, "the workspace with chat and history");
  const editor = await page.locator("#monaco-host").boundingBox();
  expect(editor!.width, "the editor keeps room to work").toBeGreaterThanOrEqual(400);
  const status = await page.locator(".status-bar").boundingBox();
  expect(status!.height, "the status bar stays one line").toBeLessThanOrEqual(36);
  await expect(page.locator("#main-nav")).toBeHidden();
});
