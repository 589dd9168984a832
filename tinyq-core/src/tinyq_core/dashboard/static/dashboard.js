// Live updates without a framework: every element with data-refresh="URL" is replaced by
// the server-rendered HTML at URL every few seconds (the dashboard's own, escaped pages).
// Paused while the tab is hidden or a button is being pressed, so a form is never swapped
// out under the pointer.
(function () {
  "use strict";
  var INTERVAL = 2000;
  var busy = false;
  document.addEventListener("pointerdown", function () { busy = true; });
  document.addEventListener("pointerup", function () { setTimeout(function () { busy = false; }, 500); });

  function refresh(element) {
    var url = element.getAttribute("data-refresh");
    return fetch(url, { credentials: "same-origin", headers: { "X-Requested-With": "tinyq" } })
      .then(function (response) { return response.ok ? response.text() : null; })
      .then(function (html) { if (html !== null) { element.innerHTML = html; } })
      .catch(function () { /* the server is restarting: try again at the next tick */ });
  }

  function tick() {
    if (!document.hidden && !busy) {
      document.querySelectorAll("[data-refresh]").forEach(refresh);
    }
  }
  setInterval(tick, INTERVAL);

  // Deleting asks first (forms with a red button); requeueing does not.
  document.addEventListener("submit", function (event) {
    var danger = event.target.querySelector("button.danger");
    if (danger && !window.confirm(danger.textContent + "?")) { event.preventDefault(); }
  });
})();
