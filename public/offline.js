// The offline page's one action (a separate file: the Content-Security-Policy allows no inline script).
document.getElementById("offline-retry").addEventListener("click", () => window.location.reload());
