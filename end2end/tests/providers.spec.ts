// Settings → AI providers with a local OpenAI-compatible server: the address rules, testing the
// key against the server (a local upstream speaking OpenAI's wire format), the models it offers.
import http from "node:http";
import { test, expect, hydrated, allowConsoleError } from "./fixtures";

const password = "correct horse battery staple";
// The server under test allows exactly this local endpoint (see playwright.config.ts).
const upstreamPort = Number(process.env.E2E_UPSTREAM_PORT || 3101);

/** A local server answering GET /v1/models as OpenAI does, or 401 once `refuse` is set. */
function startUpstream(state: { refuse: boolean; seen: string[] }) {
  const server = http.createServer((request, response) => {
    state.seen.push(`${request.method} ${request.url} ${request.headers.authorization ?? ""}`);
    if (state.refuse) {
      response.writeHead(401, { "content-type": "application/json" });
      response.end(JSON.stringify({ error: { message: "Incorrect API key provided", type: "invalid_request_error", param: null, code: "invalid_api_key" } }));
      return;
    }
    response.writeHead(200, { "content-type": "application/json" });
    response.end(JSON.stringify({
      object: "list",
      data: [
        { id: "qwen2.5-coder:7b", object: "model", created: 1, owned_by: "library" },
        { id: "llama3.2", object: "model", created: 1, owned_by: "library" },
      ],
    }));
  });
  return new Promise<http.Server>((resolve) => server.listen(upstreamPort, "127.0.0.1", () => resolve(server)));
}

test("a local server: refused addresses, a key test, its models", async ({ page, console }) => {
  const state = { refuse: false, seen: [] as string[] };
  const upstream = await startUpstream(state);
  try {
    await page.goto("/sign-up");
    await hydrated(page);
    await page.getByLabel("Name", { exact: true }).fill("Local");
    await page.getByLabel("Email").fill(`local-${Date.now()}@example.com`);
    await page.getByLabel("Password").fill(password);
    await page.getByRole("button", { name: "Create account" }).click();
    await expect(page.locator("#account-name")).toContainText("Local");

    await page.goto("/settings/providers");
    await hydrated(page);
    await expect(page.locator("#no-models")).toContainText("No provider is configured");
    await expect(page.locator("#openai-base-url")).toHaveText(/^http:\/\/127\.0\.0\.1:\d+\/v1$/);

    // An address nobody allowed is refused, with what to do.
    allowConsoleError(console, /status of 400/);
    await page.getByRole("combobox", { name: "Provider" }).selectOption("openai_compatible");
    await page.getByLabel("Label").fill("ollama");
    await page.getByLabel("Server address").fill("http://127.0.0.1:6379/v1");
    await page.getByRole("button", { name: "Save" }).click();
    await expect(page.locator(".form-error")).toContainText("an administrator can allow it");

    // The allowed one is saved, tested, and its models listed.
    await page.getByLabel("Server address").fill(`http://127.0.0.1:${upstreamPort}/v1`);
    await page.getByLabel("API key").fill("sk-local-e2e-5555");
    await page.getByRole("button", { name: "Save" }).click();
    const entry = page.locator(".credential").filter({ hasText: "ollama" });
    await expect(entry).toContainText("not tested yet");
    await page.getByRole("button", { name: /^Test Local server.*ollama$/ }).click();
    await expect(page.getByRole("status").filter({ hasText: "offers 2 models" })).toBeVisible();
    await expect(entry).toContainText("working");
    await expect(page.locator("#model-list")).toContainText("ollama/qwen2.5-coder:7b");
    await expect(page.locator("#model-list")).toContainText("ollama/llama3.2");
    expect(state.seen).toContain("GET /v1/models Bearer sk-local-e2e-5555");

    // A key the server refuses is marked so.
    state.refuse = true;
    await page.getByRole("button", { name: /^Test Local server.*ollama$/ }).click();
    await expect(page.getByRole("alert").filter({ hasText: "refused the API key" }).first()).toBeVisible();
    await expect(entry).toContainText("refused by the provider");
    await expect(page.locator("#usage-totals")).toContainText("Today: 0 calls");
  } finally {
    upstream.closeAllConnections();
    upstream.close();
  }
});
