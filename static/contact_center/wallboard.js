/* Wallboard: the table arrives over the websocket (pushed on change and on a periodic tick). While the
 * socket is down the page polls the same table over HTTP and keeps trying to reconnect. */
(function () {
  "use strict";

  function start() {
    var root = document.querySelector("[data-wallboard-socket]");
    var body = document.getElementById("wallboard-body");
    var badge = document.getElementById("wallboard-live");
    if (!root || !body) return;
    var pollUrl = root.getAttribute("data-wallboard-poll");
    var pollSeconds = parseInt(root.getAttribute("data-poll-seconds") || "10", 10);
    var pollTimer = null;
    var retry = 1000;

    function mark(live) {
      if (!badge) return;
      badge.textContent = live ? badge.dataset.liveText || "live" : badge.dataset.pollText || "polling";
      badge.className = "badge " + (live ? "text-bg-success" : "text-bg-warning") + (badge.className.indexOf("fs-6") >= 0 ? " fs-6 align-middle" : "");
      badge.setAttribute("data-live", live ? "1" : "0");
    }

    function poll() {
      fetch(pollUrl, { credentials: "same-origin", headers: { "X-Fedele-Background": "1" } })
        .then(function (response) { return response.ok ? response.text() : null; })
        .then(function (html) { if (html) body.innerHTML = html; })
        .catch(function () { /* try again on the next poll */ });
    }

    function startPolling() {
      mark(false);
      if (!pollTimer) pollTimer = window.setInterval(poll, pollSeconds * 1000);
    }

    function connect() {
      var scheme = window.location.protocol === "https:" ? "wss://" : "ws://";
      var socket;
      try { socket = new WebSocket(scheme + window.location.host + root.getAttribute("data-wallboard-socket")); }
      catch (error) { startPolling(); return; }
      socket.onopen = function () {
        retry = 1000;
        if (pollTimer) { window.clearInterval(pollTimer); pollTimer = null; }
        mark(true);
      };
      socket.onmessage = function (event) {
        var message;
        try { message = JSON.parse(event.data); } catch (error) { return; }
        if (message.type === "wallboard" && typeof message.html === "string") body.innerHTML = message.html;
      };
      socket.onclose = function () {
        startPolling();
        window.setTimeout(connect, retry);
        retry = Math.min(retry * 2, 30000);
      };
    }
    connect();
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
