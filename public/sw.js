// Async Coder service worker: caches the static application shell (stylesheet, script,
// WebAssembly, icons, manifest) so the app opens instantly and shows a page when offline.
//
// Strategy: pages and API calls go to the network first (they are per-user and must be fresh);
// when the network fails, a navigation falls back to the last cached copy of "/". Static shell
// assets are answered from the cache and refreshed in the background (stale-while-revalidate), so
// a new build is picked up on the next load. Bump VERSION when the list of shell files changes.
const VERSION = "v1";
const CACHE = `async-coder-shell-${VERSION}`;
const SHELL = [
  "/",
  "/pkg/async-coder.css",
  "/pkg/async-coder.js",
  "/pkg/async-coder.wasm",
  "/manifest.webmanifest",
  "/icons/icon.svg",
  "/icons/icon-192.png",
  "/icons/icon-512.png",
  "/favicon.ico",
];

self.addEventListener("install", (event) => {
  event.waitUntil(
    caches
      .open(CACHE)
      .then((cache) => cache.addAll(SHELL))
      .then(() => self.skipWaiting()),
  );
});

self.addEventListener("activate", (event) => {
  event.waitUntil(
    caches
      .keys()
      .then((keys) => Promise.all(keys.filter((key) => key !== CACHE).map((key) => caches.delete(key))))
      .then(() => self.clients.claim()),
  );
});

function isShellAsset(url) {
  return url.origin === self.location.origin && SHELL.includes(url.pathname) && url.pathname !== "/";
}

self.addEventListener("fetch", (event) => {
  const request = event.request;
  if (request.method !== "GET") return;
  const url = new URL(request.url);
  if (url.origin !== self.location.origin) return;

  if (request.mode === "navigate") {
    event.respondWith(
      fetch(request).catch(() =>
        caches.match("/").then((cached) => cached || new Response("Offline", { status: 503 })),
      ),
    );
    return;
  }

  if (isShellAsset(url)) {
    event.respondWith(
      caches.open(CACHE).then((cache) =>
        cache.match(request).then((cached) => {
          const refreshed = fetch(request)
            .then((response) => {
              if (response.ok) cache.put(request, response.clone());
              return response;
            })
            .catch(() => cached);
          return cached || refreshed;
        }),
      ),
    );
  }
});
