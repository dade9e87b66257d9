/* Click-to-dial for agents: any tel: link or element with data-phone anywhere in the app places an
 * outbound call through the contact center (POST to the URL on this script tag) instead of leaving the
 * page. Loaded by the base layout only for users who may handle contacts. */
(function () {
  "use strict";

  var script = document.currentScript;
  var dialUrl = script ? script.getAttribute("data-dial-url") : "";
  var label = script ? script.getAttribute("data-label") || "Call" : "Call";
  if (!dialUrl) return;

  function csrfToken() {
    try { return JSON.parse(document.body.getAttribute("hx-headers"))["X-CSRFToken"]; } catch (error) { return ""; }
  }

  function notice(text, level, link) {
    var area = document.getElementById("flash-area");
    if (!area) return;
    var box = document.createElement("div");
    box.className = "alert alert-" + level + " alert-dismissible fade show";
    box.setAttribute("role", "status");
    box.setAttribute("data-testid", "click-to-dial-notice");
    box.textContent = text + " ";
    if (link) {
      var anchor = document.createElement("a");
      anchor.href = link.href;
      anchor.textContent = link.text;
      box.appendChild(anchor);
    }
    var close = document.createElement("button");
    close.type = "button";
    close.className = "btn-close";
    close.setAttribute("data-bs-dismiss", "alert");
    close.setAttribute("aria-label", "Close");
    box.appendChild(close);
    area.appendChild(box);
  }

  function numberOf(element) {
    if (element.hasAttribute("data-phone")) return element.getAttribute("data-phone");
    return decodeURIComponent((element.getAttribute("href") || "").replace(/^tel:/i, ""));
  }

  function mark(root) {
    (root || document).querySelectorAll('a[href^="tel:"], [data-phone]').forEach(function (element) {
      if (element.dataset.ccDial) return;
      element.dataset.ccDial = "1";
      element.classList.add("cc-dial");
      if (!element.title) element.title = label + " " + numberOf(element);
      if (!element.hasAttribute("href") && !element.hasAttribute("tabindex")) {
        element.setAttribute("role", "button");
        element.setAttribute("tabindex", "0");
      }
    });
  }

  function dial(element) {
    var number = numberOf(element).trim();
    if (!number) return;
    var body = new FormData();
    body.append("number", number);
    fetch(dialUrl, { method: "POST", body: body, credentials: "same-origin", headers: { "X-CSRFToken": csrfToken() } })
      .then(function (response) { return response.json().then(function (data) { return { ok: response.ok, data: data }; }); })
      .then(function (result) {
        if (result.ok) notice(result.data.message, "info", { href: result.data.desktop_url, text: "→" });
        else notice((result.data.error && result.data.error.message) || "The call could not be placed.", "warning");
      })
      .catch(function () { notice("The server cannot be reached.", "warning"); });
  }

  document.addEventListener("click", function (event) {
    var element = event.target.closest('a[href^="tel:"], [data-phone]');
    if (!element) return;
    event.preventDefault();
    dial(element);
  });
  document.addEventListener("keydown", function (event) {
    if (event.key !== "Enter") return;
    var element = event.target.closest && event.target.closest("[data-phone]");
    if (element && element.tagName !== "A") { event.preventDefault(); dial(element); }
  });
  document.addEventListener("DOMContentLoaded", function () { mark(document); });
  document.addEventListener("htmx:afterSwap", function (event) { mark(event.detail.target); });
})();
