// The part of the Monaco binding that wasm-bindgen puts in front of every page (its snippets are
// imported by the app's script, whatever the page): the loader, and one forwarder per function
// of binding.js, which is bundled into Monaco's entry module and so downloaded only by pages
// with an editor. The forwarders reach it as `globalThis.asyncCoderEditor` once Monaco is loaded.

let loading = null;

/// Loads Monaco (its entry module, with binding.js, and its stylesheet), once per page.
export function loadMonaco(base) {
  if (!loading) {
    loading = import(`${base}/editor.js`)
      .then(() => globalThis.asyncCoderEditor.whenReady(base))
      .catch((error) => {
        loading = null;
        throw error;
      });
  }
  return loading;
}

const binding = () => globalThis.asyncCoderEditor;
const forward = (name) => (...args) => binding()[name](...args);

export const setTheme = forward("setTheme");
export const createEditor = forward("createEditor");
export const showModel = forward("showModel");
export const replaceModelValue = forward("replaceModelValue");
export const modelVersion = forward("modelVersion");
export const markSaved = forward("markSaved");
export const reveal = forward("reveal");
export const focusEditor = forward("focusEditor");
export const setFontSize = forward("setFontSize");
export const disposeEditor = forward("disposeEditor");
export const createDiff = forward("createDiff");
export const disposeDiff = forward("disposeDiff");
export const diffModifiedValue = forward("diffModifiedValue");
export const selectionOf = forward("selectionOf");
// These may be asked before Monaco is loaded: no model exists then.
export const hasModel = (uri) => (binding() ? binding().hasModel(uri) : false);
export const modelValue = (uri) => (binding() ? binding().modelValue(uri) : null);
export const isDirty = (uri) => (binding() ? binding().isDirty(uri) : false);
export const disposeModel = (uri) => binding()?.disposeModel(uri);
export const colorizeCode = (root, dark) => binding()?.colorizeCode(root, dark);
