// The workspace as a new user meets it: projects, the file tree, Monaco, saving with the keyboard,
// conflicts between two pages, history, import/export, quick open and search.
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import { Page } from "@playwright/test";
import { test, expect, hydrated, allowConsoleError, signUp, password, zipOf } from "./fixtures";

const command = process.platform === "darwin" ? "Meta" : "Control";

async function createProject(page: Page, name: string) {
  await page.goto("/projects");
  await hydrated(page);
  await page.locator("#new-project").click();
  await page.getByLabel("Name", { exact: true }).fill(name);
  await page.locator("#project-save").click();
  // A new project opens in the workspace by itself.
  await expect(page).toHaveURL(/\/projects\/[0-9a-f-]{36}$/);
  await expect(page.locator(".workspace-project")).toHaveText(name);
}

async function newEntry(page: Page, kind: "file" | "folder", path: string) {
  await page.locator(kind === "file" ? "#new-file" : "#new-folder").click();
  await page.locator("#path-input").fill(path);
  await page.locator("#path-submit").click();
  await expect(page.locator("#path-dialog")).not.toBeVisible();
}

/** The text of the editor's current model, read from Monaco itself ("" until Monaco has loaded
 * and made an editor: callers poll). */
async function editorText(page: Page): Promise<string> {
  return page.evaluate(() => {
    const editor = (globalThis as any).monaco?.editor.getEditors()[0];
    return editor?.getModel()?.getValue() ?? "";
  });
}

async function typeInEditor(page: Page, text: string) {
  await page.locator("#monaco-host .view-lines").click();
  await page.keyboard.press(`${command}+End`);
  await page.keyboard.type(text);
}

/** The app's WebAssembly files (the main one and the lazily loaded chunks). */
const WEBASSEMBLY = /\/pkg\/.*\.wasm$/;

/** Holds every request for the app's WebAssembly until the returned function is called (the
 * page stays as the server and the early editor made it); `page.unroute(WEBASSEMBLY)` after. */
async function holdWebAssembly(page: Page): Promise<() => void> {
  let release: () => void = () => {};
  const held = new Promise<void>((resolve) => {
    release = resolve;
  });
  await page.route(WEBASSEMBLY, async (route) => {
    await held;
    await route.continue();
  });
  return release;
}

async function editorReady(page: Page) {
  await expect(page.locator("#monaco-host .monaco-editor")).toBeVisible();
}

test("create a project, folders and files, type, save with the keyboard, reload and find it", async ({ page, console }) => {
  await signUp(page, "Lin");
  await page.goto("/projects");
  await hydrated(page);
  await expect(page.getByText("No projects yet")).toBeVisible();
  await createProject(page, "First steps");

  await newEntry(page, "folder", "src");
  await newEntry(page, "file", "src/main.rs");
  await expect(page.locator(".tree-row[data-path='src/main.rs']")).toBeVisible();
  await expect(page.locator(".tab[data-path='src/main.rs']")).toHaveClass(/active/);
  await editorReady(page);
  await expect(page.locator("#status-language")).toHaveText("rust");

  await typeInEditor(page, "fn main() {}");
  await expect(page.locator("#status-save")).toHaveText("Unsaved");
  await expect(page.locator(".tab[data-path='src/main.rs'] .tab-dirty")).toBeVisible();
  await page.keyboard.press(`${command}+s`);
  await expect(page.locator("#status-save")).toHaveText("Saved");
  await expect(page.locator("#status-cursor")).toContainText("Ln 1");

  await page.reload();
  await hydrated(page);
  await editorReady(page);
  // The tab, the expansion of src and the text all come back.
  await expect(page.locator(".tab[data-path='src/main.rs']")).toHaveClass(/active/);
  await expect(page.locator(".tree-row[data-path='src/main.rs']")).toBeVisible();
  await expect.poll(() => editorText(page)).toBe("fn main() {}");

  // Rename the file through the tree and keyboard: the tab follows it.
  await page.locator(".tree-row[data-path='src/main.rs']").click();
  await page.locator(".file-tree").press("F2");
  await page.locator("#path-input").fill("src/lib.rs");
  await page.locator("#path-submit").click();
  await expect(page.locator(".tab[data-path='src/lib.rs']")).toBeVisible();
  await expect(page.locator(".tree-row[data-path='src/main.rs']")).toHaveCount(0);

  // A bad path is refused with a message and creates nothing. (The browser notes the 400.)
  allowConsoleError(console, /status of 400 \(Bad Request\) \(http:\/\/[^/]+\/api\/files\/create\)$/);
  await page.locator("#new-file").click();
  await page.locator("#path-input").fill("../outside.rs");
  await page.locator("#path-submit").click();
  await expect(page.locator("#path-dialog")).toContainText("a path cannot contain '..'");
});

test.describe(() => {
  // The service worker would serve the WebAssembly from its cache, past the route holding it.
  test.use({ serviceWorkers: "block" });

test("a first visit to a project opens its README, shown before the app runs and adopted by it", async ({ page }) => {
  await signUp(page, "Reader");
  await page.goto("/projects");
  await hydrated(page);
  await page.locator("#import-project").click();
  await page.locator("#import-file").setInputFiles({
    name: "reader.zip",
    mimeType: "application/zip",
    buffer: zipOf({
      "docs/README.md": Buffer.from("# Not this one\n"),
      "Readme.md": Buffer.from("# Reader\n\nStart with src/lib.rs.\n"),
      "src/lib.rs": Buffer.from("pub fn start() {}\n"),
    }),
  });
  await page.locator("#import-name").fill("Reader");
  await page.locator("#import-submit").click();
  await page.getByRole("link", { name: "Reader" }).click();
  // Opened by the app, in this browser's first visit: the README at the root, alone.
  await expect(page.locator(".tab[data-path='Readme.md']")).toHaveClass(/active/);
  await expect(page.locator(".tab")).toHaveCount(1);
  await expect.poll(() => editorText(page)).toBe("# Reader\n\nStart with src/lib.rs.\n");

  // A browser that has never had the project open, the app's WebAssembly held back: the early
  // editor finds the README by itself.
  await page.evaluate(() => localStorage.clear());
  const release = await holdWebAssembly(page);
  await page.reload();
  await expect(page.locator("#monaco-host .view-lines")).toContainText("Start with src/lib.rs.");
  await expect(page.locator("html")).not.toHaveAttribute("data-hydrated", "true");
  release();
  await hydrated(page);
  await expect(page.locator(".tab[data-path='Readme.md']")).toHaveClass(/active/);
  // The route's WebAssembly chunks were asked for with the main file, by the preloads made when
  // the early editor was done, and those very responses were used (one entry each, no refetch).
  const chunkInitiators = await page.evaluate(() =>
    performance
      .getEntriesByType("resource")
      .filter((entry) => /\/pkg\/(split_|chunk_)[^/]*\.wasm$/.test(entry.name))
      .map((entry) => (entry as PerformanceResourceTiming).initiatorType),
  );
  expect(chunkInitiators.length).toBeGreaterThan(10);
  expect(chunkInitiators.filter((initiator) => initiator !== "link")).toEqual([]);
  await expect(page.locator("#monaco-host .monaco-editor")).toHaveCount(1);
  await expect(page.locator("html")).not.toHaveAttribute("data-early-editor", "");
  await page.unroute(WEBASSEMBLY);

  // Once the tabs are closed, that is what the project comes back to: no README forced on it.
  await page.locator(".tab[data-path='Readme.md'] .tab-close").click();
  await expect(page.locator(".tab")).toHaveCount(0);
  await page.reload();
  await hydrated(page);
  await expect(page.locator(".workspace")).toHaveAttribute("data-restored", "true");
  await expect(page.locator(".tab")).toHaveCount(0);
});

test("a page is marked hydrated only once its own lazily loaded code has run", async ({ page }) => {
  await signUp(page, "Lazy");
  await createProject(page, "Lazy route");
  await page.evaluate(() => localStorage.setItem("async-coder:chat-open", "1"));
  // Every WebAssembly file but the app's main one (the first asked for) arrives late: the
  // workspace's own chunk among them, so the app runs well before the page's code does.
  let main: string | null = null;
  await page.route(WEBASSEMBLY, async (route) => {
    const url = route.request().url();
    main ??= url;
    if (url !== main) await new Promise((resolve) => setTimeout(resolve, 1_500));
    await route.continue();
  });
  await page.reload();
  await hydrated(page);
  // What the page restores as it starts (the chat column left open) is there with the mark,
  // not a moment later: a click made now reaches the page's own code.
  expect(await page.locator(".workspace-chat.hidden").count()).toBe(0);
  expect(await page.locator("#toggle-chat").getAttribute("aria-pressed")).toBe("true");
  await page.unroute(WEBASSEMBLY);
});

test("coming back to a project, the file open last time is on screen before the app runs, and what is typed then is kept", async ({ page }) => {
  await signUp(page, "Early");
  await createProject(page, "Early editor");
  await newEntry(page, "file", "notes.md");
  await editorReady(page);
  await typeInEditor(page, "# Saved before the reload");
  await page.keyboard.press(`${command}+s`);
  await expect(page.locator("#status-save")).toHaveText("Saved");

  // The app's WebAssembly is held back: what shows the file now is the early editor alone.
  const release = await holdWebAssembly(page);
  await page.reload();
  await expect(page.locator("#monaco-host .view-lines")).toContainText("Saved before the reload");
  await expect(page.locator("html")).not.toHaveAttribute("data-hydrated", "true");
  // It can be edited at once; a save pressed now happens once the app runs.
  await page.locator("#monaco-host .view-lines").click();
  await page.keyboard.press(`${command}+End`);
  await page.keyboard.type(" and after");
  await page.keyboard.press(`${command}+s`);
  await expect(page.locator("html")).not.toHaveAttribute("data-hydrated", "true");

  const saved = page.waitForResponse((response) => response.url().includes("/api/files/save"));
  release();
  await hydrated(page);
  expect((await saved).status()).toBe(200);
  // The app adopted that editor: one editor, the text typed before it ran, saved.
  await expect(page.locator(".tab[data-path='notes.md']")).toHaveClass(/active/);
  await expect(page.locator("#monaco-host .monaco-editor")).toHaveCount(1);
  await expect.poll(() => editorText(page)).toBe("# Saved before the reload and after");
  await expect(page.locator("#status-save")).toHaveText("Saved");
  await expect(page.locator("html")).not.toHaveAttribute("data-early-editor", "");
  await page.unroute(WEBASSEMBLY);
  await page.reload();
  await hydrated(page);
  await expect.poll(() => editorText(page)).toBe("# Saved before the reload and after");
  // Typing after the adoption is tracked as before.
  await typeInEditor(page, "!");
  await expect(page.locator(".tab[data-path='notes.md'] .tab-dirty")).toBeVisible();
});
});

test("the same file saved in two pages is a conflict the user resolves", async ({ page, context }) => {
  await signUp(page, "Mo");
  await createProject(page, "Shared");
  await newEntry(page, "file", "notes.md");
  await editorReady(page);
  await typeInEditor(page, "base");
  await page.keyboard.press(`${command}+s`);
  await expect(page.locator("#status-save")).toHaveText("Saved");

  const other = await context.newPage();
  await other.goto(page.url());
  await hydrated(other);
  await editorReady(other);
  await expect.poll(() => editorText(other)).toBe("base");

  await typeInEditor(page, " from the first page");
  await page.keyboard.press(`${command}+s`);
  await expect(page.locator("#status-save")).toHaveText("Saved");

  await typeInEditor(other, " from the second page");
  await other.keyboard.press(`${command}+s`);
  await expect(other.locator("#status-save")).toHaveText("Conflict");
  await expect(other.locator(".conflict-bar")).toContainText("Nothing was overwritten");

  await other.locator("#conflict-compare").click();
  await expect(other.locator("#diff-dialog .monaco-diff-editor")).toBeVisible();
  await other.locator("#diff-dialog").getByRole("button", { name: "Close" }).first().click();

  await other.locator("#conflict-take-theirs").click();
  await expect.poll(() => editorText(other)).toBe("base from the first page");
  await expect(other.locator("#status-save")).toHaveText("Saved");

  // Now the second page is up to date: its next save goes through.
  await typeInEditor(other, "!");
  await other.keyboard.press(`${command}+s`);
  await expect(other.locator("#status-save")).toHaveText("Saved");
  await other.close();
});

test("an old revision is compared and restored as a new one", async ({ page }) => {
  await signUp(page, "Ari");
  await createProject(page, "History");
  await newEntry(page, "file", "story.txt");
  await editorReady(page);
  for (const part of ["once", " upon", " a time"]) {
    await typeInEditor(page, part);
    await page.keyboard.press(`${command}+s`);
    await expect(page.locator("#status-save")).toHaveText("Saved");
  }
  await page.locator("#toggle-history").click();
  const versions = page.locator(".revision");
  await expect(versions).toHaveCount(4);
  const second = page.locator(".revision[data-version='2']");
  await second.getByRole("button", { name: "Compare" }).click();
  await expect(page.locator("#diff-dialog .monaco-diff-editor")).toBeVisible();
  await page.locator("#diff-dialog").getByRole("button", { name: "Close" }).first().click();
  await second.getByRole("button", { name: "Restore" }).click();
  await expect.poll(() => editorText(page)).toBe("once");
  await expect(versions).toHaveCount(5);
  await expect(page.locator(".revision[data-version='5'] .revision-source")).toHaveText("restore");
  // With the panel open, a save shows up in it too.
  await typeInEditor(page, " more");
  await page.keyboard.press(`${command}+s`);
  await expect(page.locator("#status-save")).toHaveText("Saved");
  await expect(versions).toHaveCount(6);
});

/** A .zip with stored (uncompressed) entries, written by hand: no dependency needed. */

test("import a zip, find files with quick open and search, export it again", async ({ page }) => {
  await signUp(page, "Kai");
  const files: Record<string, Buffer> = {
    "README.md": Buffer.from("# Imported\n\nCall parse_config first.\n"),
    "src/config.rs": Buffer.from("pub fn parse_config() {}\n\n\nfn helper() {\n    parse_config();\n}\n"),
    "assets/logo.bin": Buffer.from([0, 1, 2, 250, 251, 252]),
  };
  await page.goto("/projects");
  await hydrated(page);
  await page.locator("#import-project").click();
  await page.locator("#import-file").setInputFiles({
    name: "imported.zip",
    mimeType: "application/zip",
    buffer: zipOf(files),
  });
  await page.locator("#import-name").fill("Imported");
  await page.locator("#import-submit").click();
  await page.getByRole("link", { name: "Imported" }).click();
  await expect(page.locator(".workspace-project")).toHaveText("Imported");
  await expect(page.locator(".tab[data-path='README.md']")).toHaveClass(/active/);

  // Quick open: a fuzzy name opens the file.
  await page.locator(".file-tree").click();
  await page.keyboard.press(`${command}+p`);
  await page.locator("#quick-open-input").fill("cfgrs");
  await page.keyboard.press("Enter");
  await expect(page.locator(".tab[data-path='src/config.rs']")).toHaveClass(/active/);
  await editorReady(page);

  // Search: a result opens the file at its line.
  await page.locator("#side-search").click();
  await page.locator("#search-input").fill("parse_config();");
  await page.locator("#search-run").click();
  await expect(page.locator(".search-summary")).toContainText("1 matches");
  await page.locator(".search-hit").filter({ hasText: "src/config.rs:5" }).click();
  await expect(page.locator("#status-cursor")).toHaveText("Ln 5, Col 5");

  // A binary file is shown as such, not in the editor.
  await page.locator("#side-files").click();
  await page.locator(".tree-row[data-path='assets']").click();
  await page.locator(".tree-row[data-path='assets/logo.bin']").click();
  await expect(page.locator(".editor-message")).toContainText("binary file (6 bytes)");

  // Export: the archive holds the same bytes.
  await page.goto("/projects");
  await hydrated(page);
  const download = page.waitForEvent("download");
  await page.locator(".project-row").filter({ hasText: "Imported" }).getByRole("link", { name: "Export" }).click();
  const saved = await (await download).path();
  const listing = JSON.parse(
    execFileSync("python3", [
      "-c",
      "import json,sys,zipfile;z=zipfile.ZipFile(sys.argv[1]);print(json.dumps({n:z.read(n).hex() for n in z.namelist() if not n.endswith('/')}))",
      saved,
    ]).toString(),
  );
  const expected = Object.fromEntries(Object.entries(files).map(([name, data]) => [name, data.toString("hex")]));
  expect(listing).toEqual(expected);
  expect(fs.existsSync(saved)).toBe(true);
});
