// A workspace page's hydration: Leptos' own (leptos' hydration_script.js, which every other page
// runs), started once the early editor (app/src/editor/early.js) has shown the file open last
// time, or has found none to show, or after `waitMilliseconds` at most. Until then Monaco's
// modules have the connection to themselves instead of sharing it with the WebAssembly. Then
// everything hydration fetches is asked for at once: the app's modules and WebAssembly, and the
// route's WebAssembly chunks (which the splitter's loader would ask for only once the main file
// has run).
(function (script, wasm, modules, chunks, waitMilliseconds) {
  const preload = (href, rel) => {
    const link = document.createElement("link");
    link.rel = rel;
    link.href = href;
    if (rel === "preload") {
      // As the loaders fetch them: `fetch()`, same origin, CORS mode.
      link.as = "fetch";
      link.type = "application/wasm";
      link.crossOrigin = "anonymous";
    }
    document.head.appendChild(link);
  };
  const hydrate = () => {
    for (const module of modules) preload(module, "modulepreload");
    preload(wasm, "preload");
    for (const chunk of chunks) preload(chunk, "preload");
    return import(script).then((module) => module.default({ module_or_path: wasm }).then(() => module.hydrate()));
  };
  const bound = new Promise((resolve) => setTimeout(resolve, waitMilliseconds));
  Promise.race([Promise.resolve(globalThis.__asyncCoderEarlyEditor), bound]).then(hydrate, hydrate);
})
