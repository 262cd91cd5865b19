// A workspace page's hydration: Leptos' own (leptos' hydration_script.js, which every other page
// runs), started once the early editor (app/src/editor/early.js) has shown the file open last
// time, or has found none to show, or after `waitMilliseconds` at most. Until then Monaco's
// modules have the connection to themselves instead of sharing it with the WebAssembly.
(function (script, wasm, waitMilliseconds) {
  const hydrate = () =>
    import(script).then((module) => module.default({ module_or_path: wasm }).then(() => module.hydrate()));
  const bound = new Promise((resolve) => setTimeout(resolve, waitMilliseconds));
  Promise.race([Promise.resolve(globalThis.__asyncCoderEarlyEditor), bound]).then(hydrate, hydrate);
})
