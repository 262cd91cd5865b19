// The Monaco binding's JavaScript side: what app/src/editor/mod.rs calls through wasm-bindgen
// (by way of the forwarders in monaco.js, as `globalThis.asyncCoderEditor.*`). Bundled into
// Monaco's own entry (monaco-entry.js, `/monaco/editor.js`, built by scripts/build-monaco.mjs), so
// that pages without an editor never download it: the app loads that module on demand, once the
// page is interactive (a workspace page preloads it while the WebAssembly downloads), unless the
// early editor (early.js) has loaded it already, with the file open last time. Models are keyed by
// a URI the Rust side chooses.

let ready = null;
const savedVersions = new Map();
// Models the early editor loaded, until the app first shows them with the text it loaded itself.
const earlyModels = new Set();
// The adopted early editor and the app's save, until the app first shows its file (its tab is
// back then: a save pressed before that happens at that moment).
let adoption = null;

/// Resolves once Monaco's stylesheet has loaded (layout measures text with its fonts and sizes).
function loadStylesheet(href) {
  const existing = document.querySelector(`link[rel="stylesheet"][href="${href}"]`);
  if (existing && existing.sheet) {
    return Promise.resolve();
  }
  return new Promise((resolve, reject) => {
    const link = existing || document.createElement("link");
    link.addEventListener("load", () => resolve(), { once: true });
    link.addEventListener("error", () => reject(new Error(`could not load ${href}`)), { once: true });
    if (!existing) {
      link.rel = "stylesheet";
      link.href = href;
      document.head.appendChild(link);
    }
  });
}

/// Resolves once Monaco's stylesheet is loaded and the early editor, if one is being started, is
/// there to adopt (it is adopted, never made twice).
export function whenReady(base) {
  if (!ready) {
    const early = Promise.resolve(globalThis.__asyncCoderEarlyEditor).catch(() => null);
    ready = Promise.all([loadStylesheet(`${base}/editor.css`), early])
      .then(([, started]) => {
        globalThis.__asyncCoderEarlyEditorReady = started || null;
      })
      .catch((error) => {
        ready = null;
        throw error;
      });
  }
  return ready;
}

function themeName(dark) {
  return dark ? "vs-dark" : "vs";
}

/// The workspace's code editor, with the options both the early editor (early.js) and the app
/// create it with: one place for them.
export function createCodeEditor(element, { fontSize, dark }) {
  return globalThis.monaco.editor.create(element, {
    model: null,
    automaticLayout: true,
    fontSize,
    theme: themeName(dark),
    minimap: { enabled: false },
    scrollBeyondLastLine: false,
    tabSize: 4,
  });
}

export function setTheme(dark) {
  globalThis.monaco.editor.setTheme(themeName(dark));
}

/// The workspace's editor in `element`: the early editor (early.js) when it was started in this
/// very element, adopted with what was typed and pressed meanwhile, else a new one.
export function createEditor(element, fontSize, dark, onSave, onChange, onCursor) {
  const monaco = globalThis.monaco;
  const early = globalThis.__asyncCoderEarlyEditorReady;
  globalThis.__asyncCoderEarlyEditorReady = null;
  let editor;
  if (early && early.element === element && element.isConnected) {
    editor = early.editor;
    editor.updateOptions({ fontSize });
    monaco.editor.setTheme(themeName(dark));
    savedVersions.set(early.uri, early.savedVersion);
    earlyModels.add(early.uri);
    adoption = { early, onSave };
  } else {
    if (early) {
      // Its element is gone (the page was rendered anew): the model stays, the editor goes.
      early.editor.dispose();
      savedVersions.set(early.uri, early.savedVersion);
      earlyModels.add(early.uri);
    }
    editor = createCodeEditor(element, { fontSize, dark });
    editor.addCommand(monaco.KeyMod.CtrlCmd | monaco.KeyCode.KeyS, () => onSave());
  }
  editor.onDidChangeModelContent(() => {
    const model = editor.getModel();
    if (model) {
      onChange(model.uri.toString());
    }
  });
  editor.onDidChangeCursorPosition((event) => {
    onCursor(event.position.lineNumber, event.position.column);
  });
  return editor;
}

function modelFor(uri) {
  return globalThis.monaco.editor.getModel(globalThis.monaco.Uri.parse(uri));
}

/// Shows the model of `uri` in the editor, creating it with `value` when it does not exist yet.
export function showModel(editor, uri, value, language) {
  // The early editor's mark kept Monaco's host shown until the app had a tab to show: it has.
  document.documentElement.removeAttribute("data-early-editor");
  let model = modelFor(uri);
  if (!model) {
    model = globalThis.monaco.editor.createModel(value, language || undefined, globalThis.monaco.Uri.parse(uri));
    savedVersions.set(uri, model.getAlternativeVersionId());
  } else if (earlyModels.delete(uri)) {
    if (!isDirty(uri) && model.getValue() !== value) {
      // Saved elsewhere between the early editor's load and the app's: the app's text is newer.
      model.setValue(value);
      savedVersions.set(uri, model.getAlternativeVersionId());
    }
    if (adoption && adoption.early.uri === uri) {
      const { early, onSave } = adoption;
      adoption = null;
      early.onSave = () => onSave();
      if (early.savePressed) {
        queueMicrotask(() => onSave());
      }
    }
  }
  if (editor.getModel() !== model) {
    editor.setModel(model);
  }
  const position = editor.getPosition();
  return position ? [position.lineNumber, position.column] : [1, 1];
}

export function hasModel(uri) {
  return modelFor(uri) !== null;
}

export function modelValue(uri) {
  const model = modelFor(uri);
  return model ? model.getValue() : null;
}

/// Replaces the model's text (taking the other side of a conflict, restoring a revision) as one
/// undoable edit.
export function replaceModelValue(uri, value) {
  const model = modelFor(uri);
  if (model) {
    model.pushEditOperations([], [{ range: model.getFullModelRange(), text: value }], () => null);
  }
}

/// The model's version now: pass it back to markSaved once a save of this text succeeded.
export function modelVersion(uri) {
  const model = modelFor(uri);
  return model ? model.getAlternativeVersionId() : -1;
}

export function markSaved(uri, version) {
  savedVersions.set(uri, version);
}

export function isDirty(uri) {
  const model = modelFor(uri);
  return model ? model.getAlternativeVersionId() !== savedVersions.get(uri) : false;
}

export function disposeModel(uri) {
  const model = modelFor(uri);
  if (model) {
    model.dispose();
  }
  savedVersions.delete(uri);
}

export function reveal(editor, line, column) {
  editor.revealLineInCenter(line);
  editor.setPosition({ lineNumber: line, column });
  editor.focus();
}

export function focusEditor(editor) {
  editor.focus();
}

export function setFontSize(editor, fontSize) {
  editor.updateOptions({ fontSize });
}

export function disposeEditor(editor) {
  editor.dispose();
}

/// A diff: `original` on the left, `modified` on the right (editable when `editable`).
export function createDiff(element, original, modified, language, dark, editable) {
  const monaco = globalThis.monaco;
  const diff = monaco.editor.createDiffEditor(element, {
    automaticLayout: true,
    readOnly: !editable,
    originalEditable: false,
    theme: themeName(dark),
    renderSideBySide: element.clientWidth > 700,
  });
  diff.setModel({
    original: monaco.editor.createModel(original, language || undefined),
    modified: monaco.editor.createModel(modified, language || undefined),
  });
  return diff;
}

export function disposeDiff(diff) {
  const models = diff.getModel();
  diff.dispose();
  if (models) {
    models.original.dispose();
    models.modified.dispose();
  }
}

/// The text on the right side of a diff (what the person may have edited).
export function diffModifiedValue(diff) {
  const models = diff.getModel();
  return models ? models.modified.getValue() : "";
}

/// The editor's selection: `[startLine, endLine, text]`, or `undefined` when nothing is selected.
export function selectionOf(editor) {
  const selection = editor.getSelection();
  const model = editor.getModel();
  if (!selection || !model || selection.isEmpty()) {
    return undefined;
  }
  return [selection.startLineNumber, selection.endLineNumber, model.getValueInRange(selection)];
}

/// Highlights the code blocks under `root` that were not highlighted yet (Monaco's colorizer,
/// when Monaco is loaded).
export function colorizeCode(root, dark) {
  const monaco = globalThis.monaco;
  if (!monaco || !root) {
    return;
  }
  for (const block of root.querySelectorAll(".code-block[data-lang] code:not([data-colorized])")) {
    const language = block.closest(".code-block").dataset.lang;
    // The colorizer turns line breaks into <br> and spaces into no-break spaces: keep the text.
    block.dataset.source = block.textContent;
    block.setAttribute("data-colorized", "");
    block.setAttribute("data-lang", language);
    monaco.editor.colorizeElement(block, { theme: themeName(dark) }).catch(() => {});
  }
}
