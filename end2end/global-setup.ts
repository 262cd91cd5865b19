// The first account of a fresh instance becomes its admin: create it before any test runs.
import type { FullConfig } from "@playwright/test";

export const ADMIN = { email: "admin@example.com", password: "admin passphrase for tests" };

export default async function globalSetup(config: FullConfig) {
  const baseURL = config.projects[0].use.baseURL!;
  const response = await fetch(`${baseURL}/api/auth/sign-up`, {
    method: "POST",
    headers: { "content-type": "application/x-www-form-urlencoded" },
    body: new URLSearchParams({ email: ADMIN.email, name: "Admin", password: ADMIN.password }),
  });
  const body = await response.text();
  if (!response.ok || !body.includes('"role":"admin"')) {
    throw new Error(`creating the admin account failed: ${response.status} ${body}`);
  }
}
