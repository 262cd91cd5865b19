// The Monaco build Async Coder serves (bundled by scripts/build-monaco.mjs with esbuild into
// public/monaco/, never committed): Monaco's editor API with the editing features people use in
// a code editor, and without what this app never turns on. Compared with npm's prebuilt
// `min/vs` (every feature, an AMD loader fetching ~14 files one dependency level at a time),
// this is one ES module and three chunks the page can preload together, ~20% fewer bytes.
//
// Left out, on purpose (each needs a provider or a host this app does not have): inline
// completions (ghost text; the AI works through the chat), code lens, inlay hints, colour
// picker, semantic tokens, drag-and-drop and paste-as, the floating menu, section headers,
// middle-click scroll, the iPad keyboard, token inspection, diff breadcrumbs, anchor select,
// in-place replace, the high-contrast toggle, the GPU renderer's actions and the LSP client.
//
// Languages: every language Monaco ships is registered; its grammar is a chunk of its own,
// fetched the first time a file of that language opens. The JSON, CSS, HTML and TypeScript
// language services run in workers built next to this bundle (see `MonacoEnvironment` below).

import * as api from "monaco-editor/editor/editor.api.js";
import * as binding from "./binding.js";
import "monaco-editor/languages/definitions/register.all.js";
import "monaco-editor/languages/features/css/register.js";
import "monaco-editor/languages/features/html/register.js";
import "monaco-editor/languages/features/json/register.js";
import "monaco-editor/languages/features/typescript/register.js";

import "../../../node_modules/monaco-editor/esm/vs/base/browser/ui/codicons/codicon/codicon.css";
import "../../../node_modules/monaco-editor/esm/vs/base/browser/ui/codicons/codicon/codicon-modifiers.css";
import "monaco-editor/editor/browser/coreCommands.js";
import "monaco-editor/editor/browser/widget/codeEditor/codeEditorWidget.js";
import "monaco-editor/editor/browser/widget/diffEditor/diffEditor.contribution.js";
import "monaco-editor/editor/common/standaloneStrings.js";
import "monaco-editor/editor/contrib/bracketMatching/browser/bracketMatching.js";
import "monaco-editor/editor/contrib/caretOperations/browser/caretOperations.js";
import "monaco-editor/editor/contrib/caretOperations/browser/transpose.js";
import "monaco-editor/editor/contrib/clipboard/browser/clipboard.js";
import "monaco-editor/editor/contrib/codeAction/browser/codeActionContributions.js";
import "monaco-editor/editor/contrib/comment/browser/comment.js";
import "monaco-editor/editor/contrib/contextmenu/browser/contextmenu.js";
import "monaco-editor/editor/contrib/cursorUndo/browser/cursorUndo.js";
import "monaco-editor/editor/contrib/documentSymbols/browser/documentSymbols.js";
import "monaco-editor/features/find/register.js";
import "monaco-editor/editor/contrib/find/browser/findController.js";
import "monaco-editor/editor/contrib/folding/browser/folding.js";
import "monaco-editor/editor/contrib/fontZoom/browser/fontZoom.js";
import "monaco-editor/editor/contrib/format/browser/formatActions.js";
import "monaco-editor/editor/contrib/gotoError/browser/gotoError.js";
import "monaco-editor/editor/contrib/gotoError/browser/markerSelectionStatus.js";
import "monaco-editor/editor/contrib/gotoSymbol/browser/goToCommands.js";
import "monaco-editor/editor/contrib/gotoSymbol/browser/link/goToDefinitionAtPosition.js";
import "monaco-editor/editor/contrib/hover/browser/hoverContribution.js";
import "monaco-editor/editor/contrib/indentation/browser/indentation.js";
import "monaco-editor/editor/contrib/inlineProgress/browser/inlineProgress.js";
import "monaco-editor/editor/contrib/insertFinalNewLine/browser/insertFinalNewLine.js";
import "monaco-editor/editor/contrib/lineSelection/browser/lineSelection.js";
import "monaco-editor/editor/contrib/linesOperations/browser/linesOperations.js";
import "monaco-editor/editor/contrib/linkedEditing/browser/linkedEditing.js";
import "monaco-editor/editor/contrib/links/browser/links.js";
import "monaco-editor/editor/contrib/longLinesHelper/browser/longLinesHelper.js";
import "monaco-editor/editor/contrib/multicursor/browser/multicursor.js";
import "monaco-editor/editor/contrib/parameterHints/browser/parameterHints.js";
import "monaco-editor/editor/contrib/placeholderText/browser/placeholderText.contribution.js";
import "monaco-editor/editor/contrib/readOnlyMessage/browser/contribution.js";
import "monaco-editor/editor/contrib/rename/browser/rename.js";
import "monaco-editor/editor/contrib/smartSelect/browser/smartSelect.js";
import "monaco-editor/editor/contrib/snippet/browser/snippetController2.js";
import "monaco-editor/editor/contrib/stickyScroll/browser/stickyScrollContribution.js";
import "monaco-editor/editor/contrib/suggest/browser/suggestController.js";
import "monaco-editor/editor/contrib/tokenization/browser/tokenization.js";
import "monaco-editor/editor/contrib/toggleTabFocusMode/browser/toggleTabFocusMode.js";
import "monaco-editor/editor/contrib/unicodeHighlighter/browser/unicodeHighlighter.js";
import "monaco-editor/editor/contrib/unusualLineTerminators/browser/unusualLineTerminators.js";
import "monaco-editor/editor/contrib/wordHighlighter/browser/wordHighlighter.js";
import "monaco-editor/editor/contrib/wordOperations/browser/wordOperations.js";
import "monaco-editor/editor/contrib/wordPartOperations/browser/wordPartOperations.js";
import "monaco-editor/editor/standalone/browser/quickAccess/standaloneCommandsQuickAccess.js";
import "monaco-editor/editor/standalone/browser/quickAccess/standaloneGotoLineQuickAccess.js";
import "monaco-editor/editor/standalone/browser/quickAccess/standaloneGotoSymbolQuickAccess.js";
import "monaco-editor/editor/standalone/browser/quickAccess/standaloneHelpQuickAccess.js";
import "monaco-editor/editor/standalone/browser/referenceSearch/standaloneReferenceSearch.js";

// The worker files are named by the build (with content hashes): `__MONACO_WORKERS__` is their
// map from Monaco's worker label to file name, replaced at build time.
const workers = __MONACO_WORKERS__;

function workerFile(label) {
  switch (label) {
    case "json":
      return workers.json;
    case "css":
    case "scss":
    case "less":
      return workers.css;
    case "html":
    case "handlebars":
    case "razor":
      return workers.html;
    case "typescript":
    case "javascript":
      return workers.typescript;
    default:
      return workers.editor;
  }
}

globalThis.MonacoEnvironment = {
  getWorker(_moduleId, label) {
    return new Worker(new URL(`./${workerFile(label)}`, import.meta.url), { name: label });
  },
};

export * from "monaco-editor/editor/editor.api.js";
export { createCodeEditor } from "./binding.js";

// What the app's WebAssembly calls (app/src/editor/mod.rs, through monaco.js) and binding.js uses.
globalThis.monaco = api;
globalThis.asyncCoderEditor = binding;
