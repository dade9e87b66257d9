/* Support agent workspace: keyboard shortcuts, live queue refresh, ticket presence (who is viewing or
 * typing) and "ticket changed" banners. Plain JavaScript, no inline handlers (CSP-safe). */
(function () {
  "use strict";

  var HEARTBEAT_MS = 10000;
  var TYPING_IDLE_MS = 4000;
  var QUEUE_DEBOUNCE_MS = 1500;

  function isTyping(target) {
    if (!target || !target.tagName) return false;
    var tag = target.tagName.toLowerCase();
    return tag === "input" || tag === "textarea" || tag === "select" || target.isContentEditable;
  }

  function format(template, name) {
    return (template || "%(name)s").replace("%(name)s", name);
  }

  function socketUrl(path) {
    return (window.location.protocol === "https:" ? "wss://" : "ws://") + window.location.host + path;
  }

  /* A websocket that reconnects with a growing delay; refused connections (4403) are not retried. */
  function openSocket(path, onMessage, onOpen) {
    var delay = 1000;
    var socket = null;
    function connect() {
      try { socket = new WebSocket(socketUrl(path)); } catch (error) { return; }
      socket.onopen = function () { delay = 1000; if (onOpen) onOpen(socket); };
      socket.onmessage = function (event) {
        var data;
        try { data = JSON.parse(event.data); } catch (error) { return; }
        onMessage(data, socket);
      };
      socket.onclose = function (event) {
        if (event.code === 4403 || event.code === 4401) return;
        window.setTimeout(connect, delay);
        delay = Math.min(delay * 2, 30000);
      };
    }
    connect();
    return {
      send: function (payload) {
        if (socket && socket.readyState === WebSocket.OPEN) socket.send(JSON.stringify(payload));
      },
    };
  }

  function showHelp() {
    var dialog = document.getElementById("shortcuts-help");
    if (dialog && window.bootstrap) window.bootstrap.Modal.getOrCreateInstance(dialog).show();
  }

  /* ---------------- queue ---------------- */
  function initQueue(root) {
    var current = -1;

    function rows() {
      var table = document.getElementById("queue-table");
      var desktop = table && table.offsetParent !== null;
      return Array.prototype.slice.call(document.querySelectorAll(desktop ? ".queue-row" : ".queue-card"));
    }

    function mark(index) {
      var list = rows();
      if (!list.length) return;
      current = Math.max(0, Math.min(index, list.length - 1));
      list.forEach(function (row, position) {
        row.classList.toggle("table-active", position === current);
        row.classList.toggle("border-primary", position === current);
        row.setAttribute("aria-selected", position === current ? "true" : "false");
      });
      list[current].scrollIntoView({ block: "nearest" });
    }

    function updateCount() {
      var label = document.getElementById("bulk-count");
      if (!label) return;
      var count = document.querySelectorAll(".queue-select:checked").length;
      if (!label.dataset.empty) label.dataset.empty = label.textContent;
      label.textContent = count ? label.dataset.template.replace("%(count)s", String(count)) : label.dataset.empty;
    }

    document.addEventListener("change", function (event) {
      if (event.target.classList && event.target.classList.contains("queue-select")) updateCount();
    });
    document.addEventListener("htmx:afterSwap", function (event) {
      if (event.detail.target && event.detail.target.id === "queue-results") {
        current = -1;
        updateCount();
      }
    });

    document.addEventListener("keydown", function (event) {
      if (event.ctrlKey || event.metaKey || event.altKey || isTyping(event.target)) return;
      var list = rows();
      if (event.key === "j") { mark(current + 1); event.preventDefault(); }
      else if (event.key === "k") { mark(current - 1); event.preventDefault(); }
      else if ((event.key === "o" || event.key === "Enter") && current >= 0 && list[current]) {
        event.preventDefault();
        window.location.assign(list[current].dataset.ticketUrl);
      } else if (event.key === "x" && current >= 0 && list[current]) {
        var box = list[current].querySelector(".queue-select");
        if (box) { box.checked = !box.checked; updateCount(); }
        event.preventDefault();
      } else if (event.key === "?") { showHelp(); event.preventDefault(); }
    });

    var path = root.dataset.queueSocket;
    if (!path) return;
    var timer = null;
    openSocket(path, function (data) {
      if (data.type !== "queue.changed" || !window.htmx) return;
      window.clearTimeout(timer);
      timer = window.setTimeout(function () {
        // Do not pull the table away from under a half-made selection.
        if (document.querySelectorAll(".queue-select:checked").length) return;
        window.htmx.ajax("GET", window.location.pathname + window.location.search, { target: "#queue-results", swap: "innerHTML" });
      }, QUEUE_DEBOUNCE_MS);
    });
  }

  /* ---------------- ticket ---------------- */
  function initTicket(root) {
    var typing = false;
    var idleTimer = null;
    var ownChangeUntil = 0;
    var me = root.dataset.userId;
    var channel = null;

    function replyBody() { return document.getElementById("reply-body"); }

    function setKind(kind) {
      var radio = document.getElementById(kind === "note" ? "reply-kind-note" : "reply-kind-reply");
      if (radio) radio.checked = true;
      var body = replyBody();
      if (body) body.focus();
    }

    function sendTyping(value) {
      if (value === typing) return;
      typing = value;
      if (channel) channel.send({ type: "heartbeat", typing: typing });
    }

    function renderPresence(viewers) {
      var box = document.getElementById("presence-chips");
      if (!box) return;
      box.textContent = "";
      viewers.forEach(function (viewer) {
        if (String(viewer.user_id) === String(me)) return;
        var chip = document.createElement("span");
        chip.className = "badge rounded-pill " + (viewer.typing ? "text-bg-warning" : "text-bg-light border");
        chip.dataset.userId = viewer.user_id;
        chip.textContent = format(viewer.typing ? root.dataset.typingTemplate : root.dataset.viewingTemplate, viewer.name);
        box.appendChild(chip);
      });
    }

    function changed(data) {
      if (Date.now() < ownChangeUntil) return;
      if (data.what === "message" && window.htmx && root.dataset.conversationUrl) {
        window.htmx.ajax("GET", root.dataset.conversationUrl, { target: "#conversation", swap: "outerHTML" });
      }
      var banner = document.getElementById("ticket-changed-banner");
      var text = document.getElementById("ticket-changed-text");
      if (banner && text) {
        text.textContent = format(text.dataset.template, data.by || "?");
        banner.classList.remove("d-none");
      }
    }

    if (root.dataset.socket && window.WebSocket) {
      channel = openSocket(root.dataset.socket, function (data) {
        if (data.type === "presence") renderPresence(data.viewers || []);
        else if (data.type === "ticket.changed") changed(data);
      });
      window.setInterval(function () {
        if (channel) channel.send({ type: "heartbeat", typing: typing });
      }, HEARTBEAT_MS);
    }

    document.addEventListener("input", function (event) {
      if (event.target.id !== "reply-body") return;
      sendTyping(event.target.value.trim().length > 0);
      window.clearTimeout(idleTimer);
      idleTimer = window.setTimeout(function () { sendTyping(false); }, TYPING_IDLE_MS);
    });
    document.addEventListener("submit", function (event) {
      var id = event.target.id;
      if (id === "reply-form" || id === "properties-form" || id === "assign-me-form") {
        ownChangeUntil = Date.now() + 5000;
        if (id === "reply-form") sendTyping(false);
      }
    }, true);

    document.addEventListener("keydown", function (event) {
      if ((event.ctrlKey || event.metaKey) && event.key === "Enter") {
        var form = event.target.closest && event.target.closest("#reply-form");
        if (form) {
          event.preventDefault();
          if (form.requestSubmit) form.requestSubmit(); else form.submit();
        }
        return;
      }
      if (event.ctrlKey || event.metaKey || event.altKey || isTyping(event.target)) return;
      if (event.key === "r") { setKind("reply"); event.preventDefault(); }
      else if (event.key === "n") { setKind("note"); event.preventDefault(); }
      else if (event.key === "s") {
        var status = document.getElementById("reply-status") || document.getElementById("prop-status");
        if (status) { status.focus(); event.preventDefault(); }
      } else if (event.key === "a") {
        var assign = document.getElementById("assign-me-form");
        if (assign) {
          event.preventDefault();
          if (assign.requestSubmit) assign.requestSubmit(); else assign.submit();
        }
      } else if (event.key === "?") { showHelp(); event.preventDefault(); }
    });
  }

  /* ---------------- new ticket: customer picker ---------------- */
  function initNewTicket() {
    document.addEventListener("click", function (event) {
      var hit = event.target.closest && event.target.closest(".customer-hit");
      if (!hit) return;
      document.getElementById("customer-id").value = hit.dataset.customer;
      document.getElementById("customer-search").value = hit.dataset.label;
      document.getElementById("customer-chosen").textContent = hit.textContent.trim();
      document.getElementById("customer-hits").textContent = "";
    });
    var search = document.getElementById("customer-search");
    if (search) {
      search.addEventListener("input", function () {
        if (!search.value.trim()) document.getElementById("customer-id").value = "";
      });
    }
  }

  function init() {
    var queue = document.getElementById("support-queue");
    if (queue) initQueue(queue);
    var ticket = document.getElementById("support-ticket");
    if (ticket) initTicket(ticket);
    if (document.getElementById("new-ticket-form")) initNewTicket();
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init);
  else init();
})();
