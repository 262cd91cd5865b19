// Registers the service worker that keeps the application shell available offline.
if ("serviceWorker" in navigator) {
  window.addEventListener("load", () => {
    navigator.serviceWorker.register("/sw.js", { scope: "/" }).catch((error) => {
      console.warn("Async Coder: the offline shell is not available:", error);
    });
  });
}
