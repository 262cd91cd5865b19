// The context the next message carries, as a person sees it in the chat beside the editor: the
// open file and the repo map ranked for the question, what the index leaves out, pins and drops
// that stay with the conversation (across a reload), and the context recorded with the message.
import { Page } from "@playwright/test";
import { test, expect, hydrated, signUp, zipOf } from "./fixtures";
import { startUpstream, addLocalProvider } from "./upstream";

const command = process.platform === "darwin" ? "Meta" : "Control";

const FILES: Record<string, string> = {
  "src/main.rs": "fn main() {\n    let total = compute_invoice_total(3);\n    render_report(total);\n}\n",
  "src/billing.rs": "pub fn compute_invoice_total(items: u32) -> u32 {\n    apply_tax_rate(items)\n}\n",
  "src/tax.rs": "pub fn apply_tax_rate(amount: u32) -> u32 {\n    amount * 2\n}\n",
  "src/report.rs": "pub fn render_report(total: u32) {\n    println!(\"{total}\");\n}\n",
  "src/unrelated.rs": "pub fn unrelated_helper() {\n    unrelated_helper();\n}\n",
  "Cargo.toml": "[package]\nname = \"shop\"\n\n[dependencies]\nserde = \"1\"\n",
  "node_modules/left-pad/index.js": "module.exports = function leftPad() {};\n",
};

function row(page: Page, key: string) {
  return page.locator(`#chat-context-preview .chat-context-row[data-key="${key}"]`);
}

test("the context is shown before sending, pins and drops stay with the conversation", async ({ page }) => {
  test.setTimeout(90_000);
  const upstream = await startUpstream();
  try {
    await signUp(page, "Cato");
    await addLocalProvider(page);
    await page.goto("/projects");
    await hydrated(page);
    await page.locator("#import-project").click();
    await page.locator("#import-file").setInputFiles({
      name: "shop.zip",
      mimeType: "application/zip",
      buffer: zipOf(Object.fromEntries(Object.entries(FILES).map(([name, text]) => [name, Buffer.from(text)]))),
    });
    await page.locator("#import-name").fill("Shop");
    await page.locator("#import-submit").click();
    await page.getByRole("link", { name: "Shop" }).click();
    await expect(page.locator(".workspace-project")).toHaveText("Shop");

    // Open src/main.rs, and the chat beside it.
    await page.locator(".file-tree").click();
    await page.keyboard.press(`${command}+p`);
    await page.locator("#quick-open-input").fill("main.rs");
    await page.keyboard.press("Enter");
    await expect(page.locator(".tab[data-path='src/main.rs']")).toHaveClass(/active/);
    await expect(page.locator("#monaco-host .monaco-editor")).toBeVisible();
    if (await page.locator(".workspace-chat.hidden").count()) await page.locator("#toggle-chat").click();
    await expect(page.locator(".workspace-chat")).toBeVisible();

    // The preview, before anything is sent: the open file, the files it calls, the manifest.
    await page.locator("#chat-input").fill("Why is compute_invoice_total wrong?");
    await page.locator("#chat-context-toggle").click();
    const preview = page.locator("#chat-context-preview");
    await expect(preview).toBeVisible();
    await expect(row(page, "current_file:src/main.rs")).toHaveAttribute("data-included", "true");
    await expect(row(page, "symbols:src/billing.rs")).toHaveAttribute("data-included", "true");
    await expect(row(page, "symbols:src/billing.rs")).toContainText("Repo map");
    await expect(row(page, "dependencies:Cargo.toml")).toHaveAttribute("data-included", "true");
    await expect(preview.locator(".chat-context-budget")).toContainText("of 8000 tokens");
    await expect(preview.locator(".chat-context-left-out summary")).toHaveText("1 file left out of the index");
    await preview.locator(".chat-context-left-out summary").click();
    await expect(preview.locator(".chat-context-left-out")).toContainText("vendored (third-party code): node_modules/left-pad/index.js");
    await expect(page.locator("#chat-context-toggle")).toContainText("tokens");
    await page.screenshot({ path: test.info().outputPath("context-preview.png") });

    // Drop one file of the map, pin another: the conversation keeps both.
    await row(page, "symbols:src/billing.rs").locator(".chat-context-drop").click();
    await expect(row(page, "symbols:src/billing.rs")).toHaveAttribute("data-included", "false");
    await expect(row(page, "symbols:src/billing.rs").locator(".chat-context-drop")).toHaveAttribute("aria-pressed", "true");
    await row(page, "symbols:src/unrelated.rs").locator(".chat-context-pin").click();
    await expect(row(page, "symbols:src/unrelated.rs").locator(".chat-context-pin")).toHaveAttribute("aria-pressed", "true");
    await expect(row(page, "symbols:src/unrelated.rs")).toHaveAttribute("data-included", "true");

    await page.reload();
    await hydrated(page);
    if (await page.locator(".workspace-chat.hidden").count()) await page.locator("#toggle-chat").click();
    await page.locator("#chat-input").fill("Why is compute_invoice_total wrong?");
    await page.locator("#chat-context-toggle").click();
    await expect(row(page, "symbols:src/billing.rs")).toHaveAttribute("data-included", "false");
    await expect(row(page, "symbols:src/unrelated.rs").locator(".chat-context-pin")).toHaveAttribute("aria-pressed", "true");

    // Sent: the request carries the map as chosen, and the message shows what was sent.
    await page.locator("#chat-send").click();
    const answer = page.locator(".chat-message.chat-assistant").last();
    await expect(answer).toHaveAttribute("data-status", "complete");
    const system: string = upstream.requests[upstream.requests.length - 1].messages[0].content;
    expect(system).toContain("A map of other files of the project");
    expect(system).toContain("│pub fn unrelated_helper() {");
    expect(system).not.toContain("│pub fn compute_invoice_total");
    await page.locator(".chat-message.chat-user").last().locator(".chat-show-context").click();
    await expect(page.locator("#chat-context")).toContainText("no (dropped)");
    await expect(page.locator("#chat-context")).toContainText("yes (pinned)");
  } finally {
    upstream.server.closeAllConnections();
    upstream.server.close();
  }
});
