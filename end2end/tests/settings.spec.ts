import { test, expect, hydrated } from "./fixtures";

test.beforeEach(async ({ page }) => {
  await page.goto("/settings");
  await hydrated(page);
});

test("the theme select applies at once, says so, and is remembered", async ({ page }) => {
  const select = page.getByRole("combobox", { name: "Theme" });
  await expect(select).toHaveValue("system");
  await select.selectOption("dark");
  await expect(page.locator("html")).toHaveAttribute("data-theme", "dark");
  await expect(page.getByRole("status").filter({ hasText: "Theme set to Dark." })).toBeVisible();
  await page.reload();
  await expect(page.getByRole("combobox", { name: "Theme" })).toHaveValue("dark");
});

test("the select works from the keyboard", async ({ page }) => {
  const select = page.getByRole("combobox", { name: "Theme" });
  await select.focus();
  await expect(select).toBeFocused();
  // Options are light, dark, system; the current one is system, the last.
  await select.press("ArrowDown");
  await select.press("ArrowUp");
  await expect(page.locator("html")).toHaveAttribute("data-theme", "dark");
});

test("a bad font size gets a clear error next to the field and changes nothing", async ({ page }) => {
  const input = page.getByLabel("Font size (pixels)");
  await input.fill("99");
  await page.getByRole("button", { name: "Save" }).click();
  await expect(page.locator("#editor-font-size-error")).toHaveText("The font size must be between 10 and 24 pixels.");
  await expect(input).toHaveAttribute("aria-invalid", "true");
  await expect(page.locator("html")).toHaveAttribute("style", /--editor-font-size: 14px/);

  await input.fill("18");
  await input.press("Enter");
  await expect(page.getByRole("status").filter({ hasText: "Editor font size set to 18 px." })).toBeVisible();
  await expect(input).not.toHaveAttribute("aria-invalid", "true");
  await page.reload();
  await expect(page.getByLabel("Font size (pixels)")).toHaveValue("18");
  await expect(page.locator("html")).toHaveAttribute("data-editor-font-size", "18");
});

test("the server refuses bad values with a 400 and a readable message", async ({ request }) => {
  const theme = await request.post("/api/settings/theme", { form: { theme: "purple" } });
  expect(theme.status()).toBe(400);
  expect(await theme.json()).toEqual({ BadRequest: 'Unknown theme "purple": choose light, dark or system.' });
  const size = await request.post("/api/settings/editor-font-size", { form: { size: "9" } });
  expect(size.status()).toBe(400);
  expect(JSON.stringify(await size.json())).toContain("between 10 and 24");
});

test("the reset dialog traps focus, closes on Escape and gives focus back", async ({ page }) => {
  const opener = page.getByRole("button", { name: "Reset preferences…" });
  await opener.focus();
  await page.keyboard.press("Enter");
  const dialog = page.getByRole("dialog", { name: "Reset preferences?" });
  await expect(dialog).toBeVisible();
  // Focus is inside the dialog, and Tab keeps it there.
  for (let i = 0; i < 5; i++) {
    expect(await dialog.evaluate((element) => element.contains(document.activeElement))).toBe(true);
    await page.keyboard.press("Tab");
  }
  await page.keyboard.press("Escape");
  await expect(dialog).toBeHidden();
  await expect(opener).toBeFocused();
});

test("reset goes back to the defaults after confirmation", async ({ page }) => {
  await page.getByRole("combobox", { name: "Theme" }).selectOption("light");
  await expect(page.locator("html")).toHaveAttribute("data-theme", "light");
  await page.getByRole("button", { name: "Reset preferences…" }).click();
  const dialog = page.getByRole("dialog", { name: "Reset preferences?" });
  await dialog.getByRole("button", { name: "Cancel" }).click();
  await expect(dialog).toBeHidden();
  await expect(page.locator("html")).toHaveAttribute("data-theme", "light");

  await page.getByRole("button", { name: "Reset preferences…" }).click();
  await dialog.getByRole("button", { name: "Reset" }).click();
  await expect(page.getByRole("status").filter({ hasText: "Preferences reset to their defaults." })).toBeVisible();
  await expect(page.locator("html")).toHaveAttribute("data-theme", "system");
  const toast = page.getByRole("status").filter({ hasText: "Preferences reset" });
  await toast.getByRole("button", { name: "Dismiss notification" }).click();
  await expect(toast).toBeHidden();
});

test("the layout has a header, a sidebar and a main area, with a working skip link", async ({ page }) => {
  await expect(page.getByRole("banner")).toBeVisible();
  await expect(page.getByRole("navigation", { name: "Main" })).toBeVisible();
  await expect(page.getByRole("link", { name: "Settings" })).toHaveAttribute("aria-current", "page");
  await page.keyboard.press("Tab");
  await expect(page.getByRole("link", { name: "Skip to content" })).toBeFocused();
});
