// Running a project's command from the workspace: a small Python project whose test fails, the
// Run panel (a suggested command shown, not run; a command saved), the output streamed live, a
// traceback's location opening the file at its line, unsaved changes named as not included, the
// fix saved, the test run again and green, and the output sent to the chat.
import { test, expect, hydrated, signUp, zipOf } from "./fixtures";

const command = process.platform === "darwin" ? "Meta" : "Control";

const files: Record<string, Buffer> = {
  "calc.py": Buffer.from("def add(a, b):\n    return a - b\n"),
  "test_calc.py": Buffer.from(
    "import unittest\n\nfrom calc import add\n\n\nclass AddTest(unittest.TestCase):\n" +
      "    def test_add(self):\n        self.assertEqual(add(2, 3), 5)\n\n\n" +
      "if __name__ == '__main__':\n    unittest.main()\n",
  ),
};

test("run a failing Python test, open its location, fix it, run it green", async ({ page }) => {
  test.setTimeout(90_000);
  await signUp(page, "Rui");
  await page.goto("/projects");
  await hydrated(page);
  await page.locator("#import-project").click();
  await page.locator("#import-file").setInputFiles({
    name: "calc.zip",
    mimeType: "application/zip",
    buffer: zipOf(files),
  });
  await page.locator("#import-name").fill("Calc");
  await page.locator("#import-submit").click();
  await page.getByRole("link", { name: "Calc" }).click();
  await expect(page.locator(".workspace-project")).toHaveText("Calc");

  // The Run panel: the test files suggest pytest, shown and not run.
  await page.locator("#side-run").click();
  await expect(page.locator("#run-command")).toBeVisible();
  await expect(page.locator("#run-command-line")).toContainText("python3 -m pytest");
  await expect(page.locator("#run-command-line")).toContainText("not saved");
  await expect(page.locator("#run-output .run-line")).toHaveCount(0);

  // This machine has no pytest: the project's `test` is unittest.
  await page.locator(".run-new-command summary").click();
  await page.locator("#new-command-name").fill("test");
  await page.locator("#new-command-line").fill("python3 -m unittest -v");
  await page.locator("#new-command-save").click();
  await expect(page.locator("#run-command-line")).toHaveText("python3 -m unittest -v");

  await page.locator("#run-start").click();
  await expect(page.locator("#run-output")).toContainText("FAIL: test_add", { timeout: 30_000 });
  await expect(page.locator("#run-output")).toContainText("AssertionError: -1 != 5");
  await expect(page.locator("#run-status")).toContainText("exit code 1");
  await expect(page.locator("#run-status")).toContainText(" s");
  await page.screenshot({ path: test.info().outputPath("run-failing.png"), fullPage: true });

  // The traceback's location opens the test at its line.
  await page.locator(".run-location", { hasText: "test_calc.py\", line 8" }).click();
  await expect(page.locator(".tab[data-path='test_calc.py']")).toHaveClass(/active/);
  await expect(page.locator("#status-cursor")).toContainText("Ln 8");

  // The fix, typed but not saved yet, is named as not included.
  await page.locator("#side-files").click();
  await page.locator(".tree-row[data-path='calc.py']").click();
  await expect(page.locator(".tab[data-path='calc.py']")).toHaveClass(/active/);
  await expect(page.locator("#monaco-host .monaco-editor")).toBeVisible();
  await page.locator("#monaco-host .view-lines").click();
  await page.keyboard.press(`${command}+a`);
  await page.keyboard.type("def add(a, b):\n    return a + b\n");
  await page.locator("#side-run").click();
  await expect(page.locator("#run-unsaved")).toContainText("calc.py");

  // Saved, it is in the next run, which passes.
  await page.locator("#monaco-host .view-lines").click();
  await page.keyboard.press(`${command}+s`);
  await expect(page.locator("#run-unsaved")).toHaveCount(0);
  await page.locator("#run-start").click();
  await expect(page.locator("#run-status")).toContainText("exit code 0", { timeout: 30_000 });
  await expect(page.locator("#run-output")).toContainText("OK");
  await page.locator("#run-history summary").click();
  await expect(page.locator("#run-history li")).toHaveCount(2);
  await page.screenshot({ path: test.info().outputPath("run-passing.png"), fullPage: true });

  // The output goes to the chat's message.
  await page.locator("#run-to-chat").click();
  await expect(page.locator(".chat-composer textarea")).toHaveValue(/Output of `test: python3 -m unittest -v` \(exit code 0/);

  // ANSI colours are shown as colours, not as escape codes, and a colour goes on to the next line.
  await page.locator(".run-new-command summary").click();
  await page.locator("#new-command-name").fill("colours");
  await page.locator("#new-command-line").fill("printf '\\033[1;31mred\\033[0m plain \\033[32mgreen\\nstill green\\033[0m\\n'");
  await page.locator("#new-command-save").click();
  await page.locator("#run-start").click();
  await expect(page.locator("#run-status")).toContainText("exit code 0", { timeout: 30_000 });
  await expect(page.locator("#run-output .ansi-red.ansi-bold")).toHaveText("red");
  await expect(page.locator("#run-output .ansi-green")).toHaveText(["green", "still green"]);
  await expect(page.locator("#run-output")).not.toContainText("[0m");
  await expect(page.locator("#run-output .ansi-red")).toHaveCSS("font-weight", "700");
});
