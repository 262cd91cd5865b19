// Every test fails if the page logs a console error or throws, unless the test said it expects
// that exact error (see `allowConsoleError`).
import { test as base, expect, Page } from "@playwright/test";

type ConsoleWatch = { errors: string[]; allowed: RegExp[] };

export const test = base.extend<{ console: ConsoleWatch }>({
  console: [
    async ({ page }, use) => {
      const watch: ConsoleWatch = { errors: [], allowed: [] };
      page.on("console", (message) => {
        if (message.type() === "error") watch.errors.push(`${message.text()} (${message.location().url})`);
      });
      page.on("pageerror", (error) => watch.errors.push(error.message));
      await use(watch);
      const unexpected = watch.errors.filter((error) => !watch.allowed.some((pattern) => pattern.test(error)));
      expect(unexpected, "console errors").toEqual([]);
    },
    { auto: true },
  ],
});

export { expect };

/** Declares a console error the test provokes on purpose (such as the browser's note on a 404). */
export function allowConsoleError(watch: ConsoleWatch, pattern: RegExp) {
  watch.allowed.push(pattern);
}

/** Waits until the WebAssembly app has hydrated the server-rendered page. */
export async function hydrated(page: Page) {
  await expect(page.locator("html")).toHaveAttribute("data-hydrated", "true");
}

/** The password every test account uses. */
export const password = "correct horse battery staple";

/** Signs a new person up (a unique email from `name` unless one is given) and waits until signed in. */
export async function signUp(page: Page, name: string, email?: string) {
  await page.goto("/sign-up");
  await hydrated(page);
  await page.getByLabel("Name", { exact: true }).fill(name);
  await page.getByLabel("Email").fill(email ?? `${name.toLowerCase()}-${Date.now()}@example.com`);
  await page.getByLabel("Password").fill(password);
  await page.getByRole("button", { name: "Create account" }).click();
  await expect(page.locator("#account-name")).toContainText(name);
}
