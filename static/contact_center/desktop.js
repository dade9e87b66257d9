/* Agent desktop: turns websocket pushes into panel refreshes. Each panel is an htmx partial listening
 * for its own event on <body> (cc:state, cc:offers, cc:contacts, cc:chat-<interaction>); while the
 * websocket is down the offers and state panels are polled instead, so offers still arrive.
 * Also: canned replies (/shortcut + space or Tab expands; the menu inserts), the customer-typing
 * indicator, and the agent's own typing sent to the visitor (debounced). */
(function () {
  "use strict";

  var root;
  var pollTimer = null;
  var typingTimers = {};

  function fire(name) { document.body.dispatchEvent(new Event(name)); }
  function current() { return root ? root.getAttribute("data-current") || "" : ""; }

  function mark(live) {
    var badge = document.getElementById("cc-live");
    if (!badge) return;
    badge.textContent = live ? root.dataset.liveText || "live" : root.dataset.pollText || "polling";
    badge.className = "badge fs-6 align-middle " + (live ? "text-bg-success" : "text-bg-warning");
    badge.setAttribute("data-live", live ? "1" : "0");
  }

  function startPolling() {
    mark(false);
    if (pollTimer) return;
    var seconds = parseInt(root.getAttribute("data-poll-seconds") || "3", 10);
    pollTimer = window.setInterval(function () { fire("cc:offers"); fire("cc:state"); }, seconds * 1000);
  }

  function stopPolling() {
    if (pollTimer) { window.clearInterval(pollTimer); pollTimer = null; }
    mark(true);
  }

  function showTyping(interaction, typing) {
    var element = document.querySelector('[data-typing-for="' + interaction + '"]');
    if (!element) return;
    element.classList.toggle("d-none", !typing);
    window.clearTimeout(typingTimers[interaction]);
    if (typing) typingTimers[interaction] = window.setTimeout(function () { element.classList.add("d-none"); }, 6000);
  }

  function markUnread(interaction) {
    var badge = document.querySelector('[data-unread-for="' + interaction + '"]');
    if (badge) badge.classList.remove("d-none");
  }

  function handle(message) {
    var type = message.type || "";
    var interaction = message.interaction || message.interaction_id || "";
    if (type === "cc.offer" || type === "cc.offer.withdrawn") { fire("cc:offers"); return; }
    if (type === "cc.offer.accepted") { fire("cc:offers"); fire("cc:contacts"); return; }
    if (type === "cc.agent.state") { fire("cc:state"); fire("cc:contacts"); return; }
    if (type === "cc.chat.typing") { showTyping(interaction, message.typing !== false); return; }
    if (type === "cc.chat.message") {
      showTyping(interaction, false);
      if (interaction && interaction === current()) fire("cc:chat-" + interaction);
      else { markUnread(interaction); fire("cc:contacts"); }
      return;
    }
    if (type.indexOf("cc.") === 0 && type !== "cc.hello") {
      // Anything else about the agent's contacts (ended, transferred, customer linked…): refresh.
      fire("cc:contacts");
      fire("cc:state");
      if (interaction && interaction === current()) {
        var panel = document.getElementById("cc-work");
        if (panel && window.htmx) window.htmx.ajax("GET", "/contact-center/desktop/i/" + interaction + "/", { target: panel, swap: "innerHTML" });
      }
    }
  }

  function connect() {
    var retry = 1000;
    function open() {
      var scheme = window.location.protocol === "https:" ? "wss://" : "ws://";
      var socket;
      try { socket = new WebSocket(scheme + window.location.host + root.getAttribute("data-desktop-socket")); }
      catch (error) { startPolling(); return; }
      var ping = null;
      socket.onopen = function () {
        retry = 1000;
        stopPolling();
        fire("cc:offers"); // anything offered while we were reconnecting
        ping = window.setInterval(function () { try { socket.send('{"type":"ping"}'); } catch (error) { /* closing */ } }, 25000);
      };
      socket.onmessage = function (event) {
        try { handle(JSON.parse(event.data)); } catch (error) { /* not for us */ }
      };
      socket.onclose = function () {
        if (ping) window.clearInterval(ping);
        startPolling();
        window.setTimeout(open, retry);
        retry = Math.min(retry * 2, 30000);
      };
    }
    open();
  }

  /* --- canned replies in the composer --- */
  function cannedReplies(form) {
    var source = form.querySelector("#cc-canned-replies");
    if (!source) return [];
    try { return JSON.parse(source.textContent) || []; } catch (error) { return []; }
  }

  function expandShortcut(textarea, replies) {
    var value = textarea.value;
    var match = /(^|\s)\/([a-z0-9_-]+)$/.exec(value.slice(0, textarea.selectionStart));
    if (!match) return false;
    var reply = replies.filter(function (item) { return item.shortcut === match[2]; })[0];
    if (!reply) return false;
    var start = textarea.selectionStart - match[2].length - 1;
    textarea.value = value.slice(0, start) + reply.text + value.slice(textarea.selectionStart);
    var caret = start + reply.text.length;
    textarea.setSelectionRange(caret, caret);
    return true;
  }

  function insertReply(textarea, text) {
    var start = textarea.selectionStart || textarea.value.length;
    textarea.value = textarea.value.slice(0, start) + text + textarea.value.slice(textarea.selectionEnd || start);
    textarea.focus();
  }

  function sendTyping(form, typing) {
    var url = form.getAttribute("data-typing-url");
    if (!url || !window.htmx) return;
    window.htmx.ajax("POST", url, { values: { typing: typing ? "1" : "0" }, swap: "none" });
  }

  document.addEventListener("keydown", function (event) {
    var textarea = event.target;
    if (!textarea.matches || !textarea.matches("[data-cc-composer] textarea")) return;
    var form = textarea.closest("form");
    if ((event.key === " " || event.key === "Tab") && expandShortcut(textarea, cannedReplies(form))) {
      event.preventDefault();
      return;
    }
    if (event.key === "Enter" && !event.shiftKey) {
      event.preventDefault();
      if (textarea.value.trim()) form.requestSubmit();
    }
  });

  document.addEventListener("input", function (event) {
    var textarea = event.target;
    if (!textarea.matches || !textarea.matches("[data-cc-composer] textarea")) return;
    var form = textarea.closest("form");
    if (!form.dataset.typing) { form.dataset.typing = "1"; sendTyping(form, true); }
    window.clearTimeout(form._ccTypingTimer);
    form._ccTypingTimer = window.setTimeout(function () { delete form.dataset.typing; sendTyping(form, false); }, 4000);
  });

  document.addEventListener("click", function (event) {
    var item = event.target.closest("[data-canned-shortcut]");
    if (!item) return;
    var form = item.closest("form");
    var reply = cannedReplies(form).filter(function (r) { return r.shortcut === item.getAttribute("data-canned-shortcut"); })[0];
    if (reply) insertReply(form.querySelector("textarea"), reply.text);
  });

  function start() {
    root = document.getElementById("cc-desktop-root");
    if (!root) return;
    startPolling();
    if ("WebSocket" in window) connect();
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
