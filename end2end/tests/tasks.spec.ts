// The async agent from a person's side: a premium person opens a project, picks the chat's Async
// mode and starts a task; a local server speaking OpenAI's streaming wire format plays the model
// (it writes a plan, edits src/lib.rs, then finishes). The person is told in the app when the
// task stops, opens its page (timeline, plan, cost), reviews the change set in Monaco's diff
// view, unticks nothing, applies it, and finds the fix saved as a new revision of the file.
import http from "node:http";
import { test, expect, hydrated, signUp, zipOf } from "./fixtures";
import { addLocalProvider } from "./upstream";
import { ADMIN } from "../global-setup";

const upstreamPort = Number(process.env.E2E_UPSTREAM_PORT || 3101);

const LIB = "pub fn add(a: i32, b: i32) -> i32 {\n    a - b\n}\n";

type Call = { name: string; arguments: object };

/** The agent's turns, decided by how many tool results the request already carries. */
function turn(toolResults: number): Call {
  switch (toolResults) {
    case 0:
      return { name: "update_plan", arguments: { items: [{ text: "Fix add in src/lib.rs", status: "in_progress" }] } };
    case 1:
      return { name: "edit", arguments: { path: "src/lib.rs", old_text: "a - b", new_text: "a + b" } };
    default:
      return { name: "finish", arguments: { summary: "Fixed add: it subtracted instead of adding." } };
  }
}

function chunk(delta: object, finish: string | null) {
  return `data: ${JSON.stringify({
    id: "chatcmpl-agent",
    object: "chat.completion.chunk",
    created: 1,
    model: "coder",
    choices: [{ index: 0, delta, logprobs: null, finish_reason: finish }],
  })}\n\n`;
}

type AgentUpstream = { server: http.Server; requests: any[]; release: () => void };

/** A local OpenAI-compatible server that answers every chat completion with the next tool call;
 * the last one (finish) waits until the test calls `release`. */
function startAgentUpstream(): Promise<AgentUpstream> {
  const requests: any[] = [];
  let release = () => {};
  const released = new Promise<void>((resolve) => (release = resolve));
  const server = http.createServer((request, response) => {
    if (request.method === "GET" && request.url === "/v1/models") {
      response.writeHead(200, { "content-type": "application/json" });
      response.end(JSON.stringify({ object: "list", data: [{ id: "coder", object: "model", created: 1, owned_by: "e2e" }] }));
      return;
    }
    let body = "";
    request.on("data", (part) => (body += part));
    request.on("end", async () => {
      const parsed = JSON.parse(body);
      requests.push(parsed);
      const toolResults = (parsed.messages as { role: string }[]).filter((message) => message.role === "tool").length;
      const call = turn(toolResults);
      if (call.name === "finish") await released;
      const text = JSON.stringify(call.arguments);
      response.writeHead(200, { "content-type": "text/event-stream" });
      response.write(chunk({ role: "assistant", content: null }, null));
      response.write(
        chunk({ tool_calls: [{ index: 0, id: `call_${toolResults}`, type: "function", function: { name: call.name, arguments: "" } }] }, null),
      );
      // The arguments arrive in pieces, as OpenAI sends them.
      for (let start = 0; start < text.length; start += 16) {
        response.write(chunk({ tool_calls: [{ index: 0, function: { arguments: text.slice(start, start + 16) } }] }, null));
        await new Promise((resolve) => setTimeout(resolve, 30));
      }
      response.write(chunk({}, "tool_calls"));
      response.write(
        `data: ${JSON.stringify({ id: "chatcmpl-agent", object: "chat.completion.chunk", created: 1, model: "coder", choices: [], usage: { prompt_tokens: 300, completion_tokens: 20, total_tokens: 320 } })}\n\n`,
      );
      response.end("data: [DONE]\n\n");
    });
  });
  return new Promise((resolve) => server.listen(upstreamPort, "127.0.0.1", () => resolve({ server, requests, release })));
}

/** Puts the account `email` on the premium plan (the async mode is in it), as the administrator. */
async function makePremium(playwright: any, baseURL: string, email: string) {
  const admin = await playwright.request.newContext({ baseURL, extraHTTPHeaders: { origin: baseURL } });
  const signedIn = await admin.post("/api/auth/sign-in", { form: { email: ADMIN.email, password: ADMIN.password } });
  expect(signedIn.status()).toBe(200);
  const users = await (await admin.post("/api/admin/users", { form: {} })).json();
  const person = users.find((user: any) => user.email === email);
  expect(person).toBeTruthy();
  const updated = await admin.post("/api/admin/update-user", {
    form: { id: person.id, role: "user", tier: "premium", disabled: "false" },
  });
  expect(updated.status()).toBe(200);
  await admin.dispose();
}

test("from the chat's async mode to an accepted change set", async ({ page, playwright, baseURL }) => {
  test.setTimeout(120_000);
  const upstream = await startAgentUpstream();
  try {
    const email = `agent-${Date.now()}@example.com`;
    await signUp(page, "Ada", email);
    await makePremium(playwright, baseURL!, email);
    await addLocalProvider(page);

    // A project with the bug.
    await page.goto("/projects");
    await hydrated(page);
    await page.locator("#import-project").click();
    await page.locator("#import-file").setInputFiles({
      name: "adder.zip",
      mimeType: "application/zip",
      buffer: zipOf({ "src/lib.rs": Buffer.from(LIB) }),
    });
    await page.locator("#import-name").fill("Adder");
    await page.locator("#import-submit").click();
    await page.getByRole("link", { name: "Adder" }).click();
    await expect(page.locator(".workspace-project")).toHaveText("Adder");

    // The chat's async mode starts a task instead of answering.
    if (await page.locator(".workspace-chat.hidden").count()) await page.locator("#toggle-chat").click();
    await page.locator("#chat-mode").selectOption("async");
    await expect(page.locator("#chat-tasks")).toBeVisible();
    await expect(page.locator("#chat-input")).toBeHidden();
    await page.locator("#task-instructions").fill("Fix add in src/lib.rs: it must add.");
    await page.locator("#start-task").click();
    const row = page.locator("#chat-tasks .task-row").first();
    await expect(row).toContainText("Fix add in src/lib.rs");
    await expect(row).toHaveAttribute("data-state", "running");

    // Its page follows it live: the edit is there while the model is still asked for the end.
    await row.getByRole("link").click();
    await hydrated(page);
    await expect(page.locator("#task-state")).toHaveAttribute("data-state", "running");
    await expect(page.locator("#task-timeline .timeline-tool[data-tool='edit']")).toContainText("ok", { timeout: 20_000 });
    await expect(page.locator("#task-review")).toContainText("once the task stops");
    upstream.release();

    // It ends on the page without a reload, and the person is told in the app.
    await expect(page.locator("#task-state")).toHaveAttribute("data-state", "finished", { timeout: 20_000 });
    const notice = page.locator(".toast", { hasText: "finished" });
    await expect(notice).toBeVisible({ timeout: 20_000 });
    await expect(notice.getByRole("link", { name: "Open the task" })).toHaveAttribute("href", /\/tasks\//);
    await expect(page.locator("#task-plan")).toContainText("Fix add in src/lib.rs");
    await expect(page.locator("#task-timeline .timeline-tool[data-tool='edit']")).toContainText("ok");
    await expect(page.locator("#task-timeline .timeline-model")).toHaveCount(3);
    await expect(page.locator("#task-counters")).toContainText("3 / 40 steps");
    await expect(page.locator(".task-summary")).toContainText("Fixed add");

    // The change set, in Monaco's diff view, one hunk accepted by default.
    const file = page.locator(".review-file[data-path='src/lib.rs']");
    await expect(file).toBeVisible();
    await expect(file.locator(".monaco-diff-editor")).toBeVisible({ timeout: 20_000 });
    await expect(file.locator(".hunk-text")).toContainText("-    a - b");
    await expect(file.locator(".hunk-text")).toContainText("+    a + b");
    await expect(file.getByRole("checkbox")).toBeChecked();
    await page.screenshot({ path: test.info().outputPath("task-review.png"), fullPage: true });
    await page.locator("#review-apply").click();
    await expect(page.locator("#apply-report")).toContainText("Saved as new revisions: src/lib.rs");

    // On a phone the task page fits the width.
    // (Polled: Monaco's diff editor lays itself out again a frame after the viewport changes.)
    await page.setViewportSize({ width: 390, height: 844 });
    await expect
      .poll(() => page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth), {
        message: "the task page overflows sideways",
      })
      .toBeLessThanOrEqual(0);
    await page.screenshot({ path: test.info().outputPath("task-phone.png"), fullPage: true });
    await page.setViewportSize({ width: 1280, height: 720 });

    // The project's file now has the fix, as a new version.
    const project = await projectId(page);
    const headers = { origin: baseURL! };
    const tree = await (await page.request.post("/api/files/tree", { form: { project_id: project }, headers })).json();
    const lib = tree.files.find((entry: any) => entry.path === "src/lib.rs");
    expect(lib.version).toBe(2);
    const opened = await page.request.post("/api/files/open", { form: { project_id: project, file_id: lib.id }, headers });
    expect((await opened.json()).content).toBe(LIB.replace("a - b", "a + b"));

    // Every model request carried the tools, and the edit's result went back to the model.
    expect(upstream.requests.length).toBe(3);
    expect(upstream.requests[0].tools.map((tool: any) => tool.function.name)).toContain("apply_patch");
    expect(JSON.stringify(upstream.requests[2].messages)).toContain("src/lib.rs");
  } finally {
    upstream.release();
    upstream.server.close();
  }
});

/** The id of the project the task page links to. */
async function projectId(page: any): Promise<string> {
  const href = await page.getByRole("link", { name: "Open the project" }).getAttribute("href");
  return href.split("/").pop();
}

test("the tasks page starts nothing without a project and says why; another person's task is not found", async ({ page, console: watch }) => {
  await signUp(page, "Tia");
  await page.goto("/tasks");
  await hydrated(page);
  await expect(page.getByRole("heading", { name: "Tasks", level: 1 })).toBeVisible();
  await expect(page.locator(".empty-note")).toContainText("No tasks yet");
  await page.locator("#task-instructions").fill("Do something");
  await page.locator("#start-task").click();
  await expect(page.locator(".new-task [role='alert']")).toContainText("Choose a project first");
  watch.allowed.push(/404/);
  await page.goto("/tasks/0191c1a0-0000-7000-8000-000000000000");
  await hydrated(page);
  await expect(page.getByRole("heading", { name: "No such task" })).toBeVisible();
});
