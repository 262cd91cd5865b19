// The early editor: on a workspace page, the file the person had open there last time (as this
// browser remembers it, app/src/workspace/state.rs) is shown in Monaco before the WebAssembly
// has downloaded, and can be read, scrolled and edited at once. When the app starts it adopts
// this editor (`createEditor` in monaco.js): the same editor and model, so nothing typed meanwhile
// is lost, and a Ctrl/Cmd+S pressed meanwhile saves then.
//
// The page's hydration waits for this (a bounded time, see `hydration.rs`), so that Monaco's
// modules have the connection to themselves instead of sharing it with the WebAssembly.
// `globalThis.__asyncCoderEarlyEditor` is a promise of the editor (`null` when none was started).
//
// Built by scripts/build-monaco.mjs into public/monaco/early-<hash>.js (next to `editor.js`,
// which it imports by URL, so that the app's own import of Monaco is the same module).

const STORAGE_PREFIX = "async-coder.workspace.";

/// The file id the person had active in this project, or `null`.
function rememberedFile(projectId) {
  try {
    const state = JSON.parse(localStorage.getItem(STORAGE_PREFIX + projectId) || "null");
    return state && typeof state.active === "string" && state.active ? state.active : null;
  } catch {
    return null;
  }
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
  const fileId = projectId ? rememberedFile(projectId) : null;
  if (!fileId) {
    return null;
  }
  const monacoBase = new URL(".", import.meta.url);
  const monacoLoaded = Promise.all([
    import(new URL("editor.js", monacoBase).href),
    loadStylesheet(new URL("editor.css", monacoBase).pathname),
  ]);
  // Without a file to show, the page's hydration need not wait for Monaco.
  monacoLoaded.catch(() => {});
  const file = await openFile(projectId, fileId);
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
