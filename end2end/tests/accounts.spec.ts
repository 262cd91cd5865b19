import { test, expect, hydrated, allowConsoleError, signUp, password } from "./fixtures";
import { ADMIN } from "../global-setup";

test("sign up, sign out, sign in, and a wrong password gets a plain message", async ({ page, console }) => {
  const email = `ada-${Date.now()}@example.com`;
  await signUp(page, "Ada", email);
  // A new account lands on its dashboard.
  await expect(page).toHaveURL(/\/projects$/);

  await page.locator("#sign-out").click();
  await expect(page.locator("#sign-in-link")).toBeVisible();
  await expect(page.locator("#account-name")).toHaveCount(0);

  await page.goto("/sign-in");
  await hydrated(page);
  await page.getByLabel("Email").fill(email);
  await page.getByLabel("Password").fill("not my password at all");
  // The browser notes the 401 of the refused sign-in in its console.
  allowConsoleError(console, /status of 401 \(Unauthorized\) \(http:\/\/[^/]+\/api\/auth\/sign-in\)$/);
  await page.getByRole("button", { name: "Sign in" }).click();
  await expect(page.getByRole("alert").filter({ hasText: "The email or the password is wrong" })).toBeVisible();

  await page.getByLabel("Password").fill(password);
  await page.getByRole("button", { name: "Sign in" }).click();
  await expect(page.locator("#account-name")).toContainText("Ada");
});

test("sign-up explains what is wrong with a weak password", async ({ page, console }) => {
  allowConsoleError(console, /status of 400 \(Bad Request\) \(http:\/\/[^/]+\/api\/auth\/sign-up\)$/);
  await page.goto("/sign-up");
  await hydrated(page);
  await page.getByLabel("Name", { exact: true }).fill("Weak");
  await page.getByLabel("Email").fill(`weak-${Date.now()}@example.com`);
  await page.getByLabel("Password").fill("password1");
  await page.getByRole("button", { name: "Create account" }).click();
  await expect(page.getByRole("alert").filter({ hasText: "most common" })).toBeVisible();
});

test("a cross-site form post with a valid session cookie is refused", async ({ page, browser, baseURL }) => {
  await signUp(page, "Grace", `grace-${Date.now()}@example.com`);
  const cookies = await page.context().cookies();
  expect(cookies.find((cookie) => cookie.name === "session")?.httpOnly).toBe(true);

  // Another site's page submits a form to our sign-out endpoint. (SameSite=Lax already keeps the
  // cookie off such a post in Chromium; the same-origin guard refuses it either way.)
  const attackerPage = await page.context().newPage();
  await attackerPage.route("http://attacker.test/", (route) =>
    route.fulfill({
      contentType: "text/html",
      body: `<form id="f" method="POST" action="${baseURL}/api/auth/sign-out"></form><script>document.getElementById("f").submit()</script>`,
    }),
  );
  const refused = attackerPage.waitForResponse((response) => response.url().endsWith("/api/auth/sign-out"));
  await attackerPage.goto("http://attacker.test/");
  expect((await refused).status()).toBe(403);
  await attackerPage.close();

  // Still signed in.
  await page.reload();
  await expect(page.locator("#account-name")).toContainText("Grace");
});

test("add and remove a provider key; the key is never shown again", async ({ page }) => {
  await signUp(page, "Keys", `keys-${Date.now()}@example.com`);
  await page.goto("/settings/providers");
  await hydrated(page);
  await expect(page.locator("#no-providers")).toContainText("No provider is configured yet");

  await page.getByRole("combobox", { name: "Provider" }).selectOption("anthropic");
  await page.getByLabel("API key").fill("sk-ant-e2e-secret-9876");
  await page.getByRole("button", { name: "Save" }).click();
  await expect(page.getByRole("status").filter({ hasText: "Anthropic credential saved." })).toBeVisible();
  const entry = page.locator(".credential").filter({ hasText: "Anthropic" });
  await expect(entry).toContainText("key …9876");
  await expect(page.getByLabel("API key")).toHaveValue("");

  await page.reload();
  await hydrated(page);
  expect(await page.content()).not.toContain("sk-ant-e2e-secret");
  await page.getByRole("button", { name: "Remove Anthropic default" }).click();
  await expect(page.locator("#no-providers")).toBeVisible();
});

test("an administrator changes a tier", async ({ page, request }) => {
  const email = `tiered-${Date.now()}@example.com`;
  const created = await request.post("/api/auth/sign-up", { form: { email, name: "Tiered", password } });
  expect(created.status()).toBe(200);

  await page.goto("/sign-in");
  await hydrated(page);
  await page.getByLabel("Email").fill(ADMIN.email);
  await page.getByLabel("Password").fill(ADMIN.password);
  await page.getByRole("button", { name: "Sign in" }).click();
  await expect(page.locator("#account-name")).toContainText("admin");

  await page.goto("/admin");
  await hydrated(page);
  const tier = page.getByRole("combobox", { name: `Tier of ${email}` });
  await expect(tier).toHaveValue("free");
  await tier.selectOption("premium");
  await expect(page.getByRole("status").filter({ hasText: `${email} updated.` })).toBeVisible();
  await page.reload();
  await expect(page.getByRole("combobox", { name: `Tier of ${email}` })).toHaveValue("premium");
  await expect(page.locator("#audit-log")).toContainText("admin.user_access_changed");
});

test("the account page saves the profile and creates a token shown once", async ({ page, request }) => {
  await signUp(page, "Profile", `profile-${Date.now()}@example.com`);
  await page.goto("/account");
  await hydrated(page);
  await expect(page.getByLabel("Name", { exact: true })).toHaveValue("Profile");
  await page.getByLabel("Name", { exact: true }).fill("Profile Renamed");
  await page.getByRole("button", { name: "Save profile" }).click();
  await expect(page.getByRole("status").filter({ hasText: "Profile saved." })).toBeVisible();

  await page.getByLabel("Token name").fill("ci");
  await page.getByRole("button", { name: "Create token" }).click();
  const secret = await page.locator("#new-token-secret").textContent();
  expect(secret).toMatch(/^acp_/);
  await expect(page.locator("#access-tokens")).toContainText("ci");

  // A script using the token: no cookies, just the bearer header.
  const me = await request.post("/api/auth/me", { headers: { authorization: `Bearer ${secret}` } });
  expect((await me.json()).name).toBe("Profile Renamed");

  await page.reload();
  await hydrated(page);
  expect(await page.content()).not.toContain(secret!);
  await page.getByRole("button", { name: "Revoke ci" }).click();
  await expect(page.locator("#access-tokens")).toContainText("revoked");
});
