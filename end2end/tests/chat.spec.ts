// The chat as a new user meets it, against a local OpenAI-compatible server the test starts
// (speaking OpenAI's streaming wire format) configured as the user's local provider: no provider
// yet, ask and watch the answer stream, switch mode and model, reload in the middle of an answer
// and see it finish, stop an answer and continue it, apply a code block to a file through the
// diff view, and Markdown that cannot run script.
import { Page } from "@playwright/test";
import { test, expect, hydrated, signUp, password } from "./fixtures";
import { startUpstream, addLocalProvider, words } from "./upstream";

function lastAnswer(page: Page) {
  return page.locator(".chat-message.chat-assistant").last();
}

/** Sends a message and waits until it is shown (with its answer started). */
async function ask(page: Page, text: string) {
  const asked = page.locator(".chat-message.chat-user");
  const before = await asked.count();
  await page.locator("#chat-input").fill(text);
  await page.locator("#chat-send").click();
  await expect(asked).toHaveCount(before + 1);
}

test("without a provider the chat says so and links to the settings", async ({ page }) => {
  await signUp(page, "Nia");
  await page.goto("/chat");
  await hydrated(page);
  const notice = page.locator("#chat-no-provider");
  await expect(notice).toContainText("No AI provider is configured");
  await expect(notice.getByRole("link")).toHaveAttribute("href", "/settings/providers");
  await expect(page.locator("#chat-send")).toBeDisabled();
});

test("ask, stream, switch mode and model, reload mid-answer, stop, continue, apply code", async ({ page }) => {
  test.setTimeout(120_000);
  const upstream = await startUpstream();
  try {
    await signUp(page, "Ora");
    await addLocalProvider(page);

    // A project with one file, open in the editor.
    await page.goto("/projects");
    await hydrated(page);
    await page.locator("#new-project").click();
    await page.getByLabel("Name", { exact: true }).fill("Chatty");
    await page.locator("#project-save").click();
    await expect(page.locator(".workspace-project")).toHaveText("Chatty");
    await page.locator("#new-file").click();
    await page.locator("#path-input").fill("src/main.rs");
    await page.locator("#path-submit").click();
    await expect(page.locator(".tab[data-path='src/main.rs']")).toHaveClass(/active/);
    await expect(page.locator("#monaco-host .monaco-editor")).toBeVisible();

    // The chat column opens from the side header (and stays open across reloads).
    if (await page.locator(".workspace-chat.hidden").count()) await page.locator("#toggle-chat").click();
    await expect(page.locator(".workspace-chat")).toBeVisible();

    // Ask and watch it stream.
    await expect(page.locator("#chat-no-provider")).toHaveCount(0);
    await ask(page, "Say hello");
    await expect(page.locator(".chat-message.chat-user").last()).toContainText("Say hello");
    await expect(lastAnswer(page)).toHaveAttribute("data-status", "streaming");
    await expect(lastAnswer(page).locator(".chat-body")).toHaveText("Hello from the local model.");
    await expect(lastAnswer(page)).toHaveAttribute("data-status", "complete");
    await expect(lastAnswer(page).locator(".chat-meta")).toContainText("coder");
    await expect(page.locator("#chat-title")).toHaveText("Say hello");

    // Another mode and an explicit model: the request carries the mode's prompt and the file.
    await page.locator("#chat-mode").selectOption("ask");
    await page.locator("#chat-model").selectOption("local/coder");
    await ask(page, "What does this file do?");
    await expect(lastAnswer(page)).toHaveAttribute("data-status", "complete");
    const asked = upstream.requests[upstream.requests.length - 1];
    expect(asked.model).toBe("coder");
    expect(asked.messages[0].content).toContain("You answer questions about the user's codebase");
    expect(asked.messages[0].content).toContain("src/main.rs");
    await lastAnswer(page).locator(".chat-show-context").click();
    await expect(page.locator("#chat-context")).toContainText("You answer questions");
    await page.keyboard.press("Escape");

    // A long answer survives a reload: it goes on on the server and comes back whole.
    await ask(page, "Write a long answer");
    await expect(lastAnswer(page).locator(".chat-body")).toContainText("word2");
    await page.reload();
    await hydrated(page);
    await expect(lastAnswer(page)).toHaveAttribute("data-status", "complete", { timeout: 20_000 });
    await expect(lastAnswer(page).locator(".chat-body")).toHaveText(words(30).join("").trim());

    // Stop keeps what arrived; continue finishes it.
    await ask(page, "Another long one");
    await expect(lastAnswer(page).locator(".chat-body")).toContainText("word1");
    await lastAnswer(page).locator(".chat-stop").click();
    await expect(lastAnswer(page)).toHaveAttribute("data-status", "interrupted");
    await expect(lastAnswer(page).locator(".chat-reason")).toContainText("Stopped before the end.");
    const partial = await lastAnswer(page).locator(".chat-body").innerText();
    expect(partial).not.toContain("word29");
    // Continue: the same answer goes on from what it had.
    await lastAnswer(page).locator(".chat-continue").click();
    await expect(lastAnswer(page)).toHaveAttribute("data-status", "complete");
    await expect(lastAnswer(page).locator(".chat-body")).toHaveText(`${partial.trim()} Hello from the local model.`);
    const continued = upstream.requests[upstream.requests.length - 1].messages;
    expect(continued[continued.length - 2]).toEqual({ role: "assistant", content: partial.trim() + " " });

    // A code block applied to the file through the diff view, saved as a new revision.
    await ask(page, "Show me the code");
    await expect(lastAnswer(page)).toHaveAttribute("data-status", "complete");
    const block = lastAnswer(page).locator(".code-block");
    await expect(block).toHaveAttribute("data-path", "src/main.rs");
    await block.locator("[data-action='apply']").click();
    await expect(page.locator("#diff-dialog")).toBeVisible();
    await expect(page.locator("#diff-dialog")).toContainText("Apply to src/main.rs");
    await page.locator("#apply-accept").click();
    await expect(page.getByRole("status").filter({ hasText: "Saved src/main.rs as version" })).toBeVisible();
    await expect(page.locator("#monaco-host .view-lines")).toContainText("hello from the chat");
    // Line for line as the block holds it (highlighting must not change the text applied).
    expect(await page.evaluate(() => (globalThis as any).monaco.editor.getModels().map((model: any) => model.getValue()))).toContain(
      'fn main() {\n    println!("hello from the chat");\n}\n',
    );
    // The diff view's editors are gone with the dialog: only the workspace's editor is left.
    expect(await page.evaluate(() => (globalThis as any).monaco.editor.getEditors().length)).toBe(1);
    await expect(page.locator("#status-save")).toHaveText("Saved");

    // Markdown from the user is shown, never run.
    await ask(page, 'Look: <img src=x onerror="document.title=\'pwned\'"> [x](javascript:alert(1))');
    await expect(lastAnswer(page)).toHaveAttribute("data-status", "complete");
    const mine = page.locator(".chat-message.chat-user").last().locator(".chat-body");
    await expect(mine).toContainText("<img src=x");
    await expect(mine.locator("img")).toHaveCount(0);
    await expect(mine.locator("a")).toHaveCount(0);
    expect(await page.title()).not.toBe("pwned");

    // Regenerate answers the same question again; edit-and-resend replaces what followed.
    const before = upstream.requests.length;
    await lastAnswer(page).locator(".chat-regenerate").click();
    await expect(lastAnswer(page)).toHaveAttribute("data-status", "complete");
    await expect(lastAnswer(page).locator(".chat-body")).toHaveText("Hello from the local model.");
    expect(upstream.requests.length).toBe(before + 1);
    const messages = page.locator(".chat-message");
    const count = await messages.count();
    await page.locator(".chat-message.chat-user").last().locator(".chat-edit-button").click();
    await page.locator(".chat-edit").fill("Show me the code again");
    await page.locator(".chat-message.chat-user").last().getByRole("button", { name: "Send" }).click();
    await expect(lastAnswer(page)).toHaveAttribute("data-status", "complete");
    await expect(lastAnswer(page).locator(".code-block")).toBeVisible();
    await expect(messages).toHaveCount(count);
    await expect(page.locator(".chat-message.chat-user").last()).toContainText("Show me the code again");

    // The conversation is listed with its cost, found by search, and reopens after a reload.
    await page.locator("#chat-conversations").click();
    await page.locator("#chat-search").fill("say hello");
    await expect(page.locator(".chat-list-item")).toHaveCount(1);
    await page.locator("#chat-search").fill("no such words");
    await expect(page.locator(".chat-list-item")).toHaveCount(0);
    await page.reload();
    await hydrated(page);
    await expect(page.locator(".chat-message.chat-user").last()).toContainText("Show me the code again");
    // A long conversation scrolls inside the panel, opened at its newest message; the page keeps
    // the window's height.
    await expect(lastAnswer(page).locator(".chat-actions").last()).toBeInViewport();
    const height = await page.evaluate(() => document.documentElement.scrollHeight);
    expect(height).toBeLessThanOrEqual(page.viewportSize()!.height + 2);
    await page.screenshot({ path: "target/e2e-results/chat.png", fullPage: true });
  } finally {
    // Keep-alive connections too: the next test's upstream takes this port.
    upstream.server.closeAllConnections();
    upstream.server.close();
  }
});
