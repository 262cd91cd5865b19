// Async Coder service worker: keeps the static application files (stylesheet, script,
// WebAssembly, icons, manifest) so the app opens fast, and shows a clear offline page when the
// server cannot be reached.
//
// Pages and API calls always go to the network: they belong to the signed-in person and must be
// fresh. No page is ever cached, so an offline reload never shows another page (whose HTML
// would not match the route being hydrated) nor the previous person's name after a sign-out:
// it shows /offline.html, a static page without the app or anyone's data. Files under /pkg/
// carry a content hash in their names (a new build has new names), so they are answered from
// the cache first; the other static files are answered from the cache and refreshed in the
// background. Bump VERSION when this file's precache list changes.
const VERSION = "v3";
const CACHE = `async-coder-static-${VERSION}`;
const PRECACHE = [
  "/offline.html",
  "/offline.css",
  "/offline.js",
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
      .then((cache) => cache.addAll(PRECACHE))
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

function isHashedAsset(url) {
  return url.pathname.startsWith("/pkg/");
}

function isStaticFile(url) {
  return PRECACHE.includes(url.pathname);
}

self.addEventListener("fetch", (event) => {
  const request = event.request;
  if (request.method !== "GET") return;
  const url = new URL(request.url);
  if (url.origin !== self.location.origin) return;

  if (request.mode === "navigate") {
    event.respondWith(
      fetch(request).catch(() =>
        caches
          .match("/offline.html")
          .then((cached) => cached || new Response("You are offline.", { status: 503 })),
      ),
    );
    return;
  }

  if (isHashedAsset(url)) {
    event.respondWith(
      caches.open(CACHE).then((cache) =>
        cache.match(request).then(
          (cached) =>
            cached ||
            fetch(request).then((response) => {
              if (response.ok) cache.put(request, response.clone());
              return response;
            }),
        ),
      ),
    );
    return;
  }

  if (isStaticFile(url)) {
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
