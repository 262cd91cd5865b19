// The early editor: on a workspace page, the file the person had open there last time (as this
// browser remembers it, app/src/workspace/state.rs), or on a first visit the project's README,
// is shown in Monaco before the WebAssembly has downloaded, and can be read, scrolled and edited
// at once. When the app starts it adopts this editor (`createEditor` in binding.js): the same
// editor and model, so nothing typed meanwhile is lost, and a Ctrl/Cmd+S pressed meanwhile saves
// then.
//
// The page's hydration waits for this (a bounded time, see `hydration.rs`), so that Monaco's
// modules have the connection to themselves instead of sharing it with the WebAssembly.
// `globalThis.__asyncCoderEarlyEditor` is a promise of the editor (`null` when none was started).
//
// Built by scripts/build-monaco.mjs into public/monaco/early-<hash>.js (next to `editor.js`,
// which it imports by URL, so that the app's own import of Monaco is the same module).

const STORAGE_PREFIX = "async-coder.workspace.";

/// The file id the person had active in this project, `null` when none was, `undefined` when
/// this browser has never had the project open (nothing stored, or nothing it can read).
function rememberedFile(projectId) {
  try {
    const state = JSON.parse(localStorage.getItem(STORAGE_PREFIX + projectId) ?? "null");
    if (state === null || typeof state !== "object") {
      return undefined;
    }
    return typeof state.active === "string" && state.active ? state.active : null;
  } catch {
    return undefined;
  }
}

// The names a project's README goes by, in order of preference, compared ignoring case: the
// same rule as `first_visit_file` in app/src/workspace/state.rs, which the app applies as it
// restores the tabs (and must, to adopt the editor made here).
const README_NAMES = ["readme.md", "readme.markdown", "readme", "readme.txt", "readme.rst", "readme.adoc"];

/// The id of the file a first visit opens (the project's README at its root), or `null`.
async function firstVisitFile(projectId) {
  const response = await fetch("/api/files/tree", {
    method: "POST",
    headers: { "content-type": "application/x-www-form-urlencoded" },
    body: new URLSearchParams({ project_id: projectId }),
    credentials: "same-origin",
  });
  if (!response.ok) {
    return null;
  }
  const tree = await response.json();
  const files = Array.isArray(tree?.files) ? tree.files : [];
  for (const name of README_NAMES) {
    const file = files.find((file) => !file.binary && typeof file.path === "string" && file.path.toLowerCase() === name);
    if (file) {
      return file.id;
    }
  }
  return null;
}

/// The file's text through the app's own server function (`open_file`); `null` when it cannot be
/// shown (gone, binary, signed out).
async function openFile(projectId, fileId) {
  const response = await fetch("/api/files/open", {
    method: "POST",
    headers: { "content-type": "application/x-www-form-urlencoded" },
    body: new URLSearchParams({ project_id: projectId, file_id: fileId }),
    credentials: "same-origin",
  });
  if (!response.ok) {
    return null;
  }
  const file = await response.json();
  return file && !file.binary && typeof file.content === "string" ? file : null;
}

function loadStylesheet(href) {
  const existing = document.querySelector(`link[rel="stylesheet"][href="${href}"]`);
  if (existing) {
    return Promise.resolve();
  }
  return new Promise((resolve, reject) => {
    const link = document.createElement("link");
    link.rel = "stylesheet";
    link.href = href;
    link.addEventListener("load", () => resolve(), { once: true });
    link.addEventListener("error", () => reject(new Error(`could not load ${href}`)), { once: true });
    document.head.appendChild(link);
  });
}

function prefersDark(root) {
  const theme = root.dataset.theme;
  return theme === "dark" || (theme !== "light" && matchMedia("(prefers-color-scheme: dark)").matches);
}

async function start() {
  const match = /^\/projects\/([^/]+)\/?$/.exec(location.pathname);
  const projectId = match ? decodeURIComponent(match[1]) : null;
  const remembered = projectId ? rememberedFile(projectId) : null;
  if (remembered === null) {
    return null;
  }
  const monacoBase = new URL(".", import.meta.url);
  const monacoLoaded = Promise.all([
    import(new URL("editor.js", monacoBase).href),
    loadStylesheet(new URL("editor.css", monacoBase).pathname),
  ]);
  // Without a file to show, the page's hydration need not wait for Monaco.
  monacoLoaded.catch(() => {});
  const fileId = remembered ?? (await firstVisitFile(projectId));
  const file = fileId ? await openFile(projectId, fileId) : null;
  if (!file) {
    return null;
  }
  const [monaco] = await monacoLoaded;
  const element = document.getElementById("monaco-host");
  // The app may have started meanwhile (a slow answer): it makes its own editor then.
  if (!element || document.documentElement.dataset.hydrated === "true") {
    return null;
  }
  const root = document.documentElement;
  const uri = monaco.Uri.parse(`inmemory://file/${file.id}`);
  const model =
    monaco.editor.getModel(uri) || monaco.editor.createModel(file.content, file.language || undefined, uri);
  // Shows the editor's host, which the server rendered hidden (no tab is open until the app
  // restores them); the app takes the mark away once its tabs are back.
  root.dataset.earlyEditor = "";
  const editor = monaco.createCodeEditor(element, {
    fontSize: Number(root.dataset.editorFontSize) || 14,
    dark: prefersDark(root),
  });
  editor.setModel(model);
  const early = {
    editor,
    element,
    uri: uri.toString(),
    savedVersion: model.getAlternativeVersionId(),
    savePressed: false,
    // Replaced by the app's save when it adopts the editor.
    onSave: () => {
      early.savePressed = true;
    },
  };
  editor.addCommand(monaco.KeyMod.CtrlCmd | monaco.KeyCode.KeyS, () => early.onSave());
  return early;
}

globalThis.__asyncCoderEarlyEditor = start().catch((error) => {
  console.warn("the early editor did not start; the app opens the file once it runs", error);
  return null;
});
