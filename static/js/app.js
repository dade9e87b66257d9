/* fedele's page behaviour: htmx error handling, theme switch, live notifications, copy buttons,
 * charts. Plain JavaScript; Alpine.js handles the small in-page toggles declared in templates. */
(function () {
  "use strict";

  function csrfToken() {
    var headers = document.body.getAttribute("hx-headers");
    try { return JSON.parse(headers)["X-CSRFToken"]; } catch (error) { return ""; }
  }

  function escapeHtml(text) {
    var div = document.createElement("div");
    div.textContent = text;
    return div.innerHTML;
  }

  function flash(message, level) {
    var area = document.getElementById("flash-area");
    if (!area) return;
    area.insertAdjacentHTML(
      "beforeend",
      '<div class="alert alert-' + (level || "danger") + ' alert-dismissible fade show" role="alert">' +
        escapeHtml(message) +
        '<button type="button" class="btn-close" data-bs-dismiss="alert" aria-label="' +
        escapeHtml(document.body.dataset.closeLabel || "Close") + '"></button></div>'
    );
  }

  /* --- htmx: errors land in #flash-area; 422 form partials swap where they were asked for --- */
  document.addEventListener("htmx:beforeSwap", function (event) {
    var xhr = event.detail.xhr;
    if (xhr.status < 400 || xhr.status === 422) return;
    var area = document.getElementById("flash-area");
    if (!area) return;
    event.detail.shouldSwap = true;
    event.detail.isError = false;
    event.detail.target = area;
    event.detail.swapOverride = "innerHTML";
    var body = xhr.responseText || "";
    if (!body.trim() || /<html[\s>]/i.test(body)) {
      event.detail.serverResponse =
        '<div class="alert alert-danger" role="alert">' +
        escapeHtml(document.body.dataset.errorMessage || "Something went wrong.") +
        " (" + xhr.status + ")</div>";
    }
  });
  document.addEventListener("htmx:sendError", function () {
    flash(document.body.dataset.offlineMessage || "The server cannot be reached.", "warning");
  });

  /* --- theme switch: apply now, remember locally, save to the profile in the background --- */
  function markTheme() {
    var current = window.fedeleTheme ? window.fedeleTheme.get() : "auto";
    document.querySelectorAll("[data-theme-value]").forEach(function (button) {
      var active = button.getAttribute("data-theme-value") === current;
      button.classList.toggle("active", active);
      button.setAttribute("aria-pressed", active ? "true" : "false");
    });
    document.querySelectorAll("[data-theme-icon]").forEach(function (icon) {
      icon.className = "bi " + ({ light: "bi-sun", dark: "bi-moon-stars", auto: "bi-circle-half" }[current]);
    });
  }
  document.addEventListener("click", function (event) {
    var button = event.target.closest("[data-theme-value]");
    if (!button || !window.fedeleTheme) return;
    var value = window.fedeleTheme.set(button.getAttribute("data-theme-value"));
    markTheme();
    var url = document.body.dataset.preferencesUrl;
    if (url) {
      var data = new FormData();
      data.append("action", "preferences");
      data.append("theme", value);
      fetch(url, {
        method: "POST",
        body: data,
        credentials: "same-origin",
        headers: { "X-CSRFToken": csrfToken(), "X-Fedele-Background": "1" },
      }).catch(function () { /* kept locally; saved next time */ });
    }
  });

  /* --- live notifications over the user's websocket --- */
  function setUnread(count) {
    document.querySelectorAll("[data-notification-count]").forEach(function (badge) {
      badge.setAttribute("data-notification-count", String(count));
      var text = badge.querySelector("[data-count-text]") || badge;
      text.textContent = count > 99 ? "99+" : String(count);
      badge.classList.toggle("d-none", count <= 0);
    });
  }
  function unread() {
    var badge = document.querySelector("[data-notification-count]");
    return badge ? parseInt(badge.getAttribute("data-notification-count") || "0", 10) : 0;
  }
  function toast(message) {
    var region = document.getElementById("toast-region");
    if (!region || !window.bootstrap) return;
    var wrapper = document.createElement("div");
    wrapper.className = "toast align-items-center border-0 text-bg-primary";
    wrapper.setAttribute("role", "status");
    wrapper.setAttribute("aria-live", "polite");
    wrapper.innerHTML = '<div class="d-flex"><div class="toast-body"><i class="bi bi-bell me-2"></i></div>' +
      '<button type="button" class="btn-close btn-close-white me-2 m-auto" data-bs-dismiss="toast"></button></div>';
    var body = wrapper.querySelector(".toast-body");
    if (message.link) {
      var link = document.createElement("a");
      link.href = message.link;
      link.className = "link-light";
      link.textContent = message.title || "";
      body.appendChild(link);
    } else {
      body.appendChild(document.createTextNode(message.title || ""));
    }
    region.appendChild(wrapper);
    var instance = window.bootstrap.Toast.getOrCreateInstance(wrapper, { delay: 6000 });
    wrapper.addEventListener("hidden.bs.toast", function () { wrapper.remove(); });
    instance.show();
  }
  function connectNotifications() {
    var path = document.body.dataset.notificationsSocket;
    if (!path || !("WebSocket" in window)) return;
    var delay = 1000;
    function open() {
      var scheme = window.location.protocol === "https:" ? "wss://" : "ws://";
      var socket;
      try { socket = new WebSocket(scheme + window.location.host + path); } catch (error) { return; }
      socket.addEventListener("open", function () { delay = 1000; });
      socket.addEventListener("message", function (event) {
        var message;
        try { message = JSON.parse(event.data); } catch (error) { return; }
        if (message.type !== "notification") return;
        setUnread(unread() + 1);
        toast(message);
      });
      socket.addEventListener("close", function (event) {
        if (event.code === 4401) return; // signed out: do not knock again
        delay = Math.min(delay * 2, 60000);
        window.setTimeout(open, delay);
      });
    }
    open();
  }

  /* --- copy-to-clipboard buttons: <button data-copy-target="#id"> --- */
  document.addEventListener("click", function (event) {
    var button = event.target.closest("[data-copy-target]");
    if (!button) return;
    var source = document.querySelector(button.getAttribute("data-copy-target"));
    if (!source) return;
    var text = source.value !== undefined && source.tagName !== "CODE" ? source.value : source.textContent;
    var done = function () {
      var original = button.innerHTML;
      button.innerHTML = '<i class="bi bi-check2"></i> ' + escapeHtml(button.dataset.copiedLabel || "Copied");
      window.setTimeout(function () { button.innerHTML = original; }, 2000);
    };
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(text.trim()).then(done, function () { selectText(source); });
    } else {
      selectText(source);
      try { document.execCommand("copy"); done(); } catch (error) { /* the text stays selected */ }
    }
  });
  function selectText(element) {
    var range = document.createRange();
    range.selectNodeContents(element);
    var selection = window.getSelection();
    selection.removeAllRanges();
    selection.addRange(range);
  }

  /* --- charts: <div data-chart="bar|pie" data-chart-source="json-script-id"> --- */
  var charts = [];
  function cssVar(name) {
    return getComputedStyle(document.documentElement).getPropertyValue(name).trim();
  }
  function chartOption(kind, data) {
    var text = cssVar("--bs-body-color") || "#212529";
    var grid = cssVar("--bs-border-color") || "#dee2e6";
    var palette = ["#0f766e", "#f59e0b", "#6366f1", "#e11d48", "#0ea5e9", "#84cc16"];
    var base = { color: palette, textStyle: { color: text }, tooltip: {}, animationDuration: 400 };
    if (kind === "pie") {
      return Object.assign(base, {
        tooltip: { trigger: "item", formatter: "{b}: {c} ({d}%)" },
        legend: { bottom: 0, textStyle: { color: text } },
        series: [{
          type: "pie",
          radius: ["45%", "72%"],
          center: ["50%", "44%"],
          avoidLabelOverlap: true,
          label: { show: false },
          data: data.labels.map(function (label, index) { return { name: label, value: data.values[index] }; }),
        }],
      });
    }
    return Object.assign(base, {
      tooltip: { trigger: "axis", axisPointer: { type: "shadow" } },
      grid: { left: 8, right: 16, top: 16, bottom: 8, containLabel: true },
      xAxis: { type: "value", minInterval: 1, splitLine: { lineStyle: { color: grid } }, axisLabel: { color: text } },
      yAxis: { type: "category", data: data.labels, inverse: true, axisLabel: { color: text } },
      series: [{ type: "bar", data: data.values, barMaxWidth: 28, itemStyle: { borderRadius: [0, 4, 4, 0] },
                 label: { show: true, position: "right", color: text } }],
    });
  }
  function drawCharts(root) {
    if (!window.echarts) return;
    (root || document).querySelectorAll("[data-chart]").forEach(function (element) {
      var source = document.getElementById(element.getAttribute("data-chart-source"));
      if (!source) return;
      var data;
      try { data = JSON.parse(source.textContent); } catch (error) { return; }
      var existing = window.echarts.getInstanceByDom(element);
      if (existing) existing.dispose();
      var chart = window.echarts.init(element, null, { renderer: "svg" });
      chart.setOption(chartOption(element.getAttribute("data-chart"), data));
      charts.push(chart);
    });
  }
  window.addEventListener("resize", function () {
    charts.forEach(function (chart) { if (!chart.isDisposed()) chart.resize(); });
  });
  new MutationObserver(function () {
    // The theme changed: redraw so axis and legend colours follow.
    charts = charts.filter(function (chart) { return !chart.isDisposed(); });
    if (charts.length) drawCharts();
  }).observe(document.documentElement, { attributes: true, attributeFilter: ["data-bs-theme"] });

  /* --- close the phone sidebar when a link in it is followed --- */
  document.addEventListener("click", function (event) {
    var link = event.target.closest("#sidebar a[href]");
    if (!link || !window.bootstrap) return;
    var sidebar = document.getElementById("sidebar");
    var instance = window.bootstrap.Offcanvas.getInstance(sidebar);
    if (instance) instance.hide();
  });

  document.addEventListener("htmx:afterSwap", function (event) { drawCharts(event.detail.target); });

  /* --- one active link in the sidebar: the longest match (/customers/ and /customers/import/ both match) --- */
  function markActiveLink() {
    var active = Array.prototype.slice.call(document.querySelectorAll("#sidebar .nav-link.active"));
    if (active.length < 2) return;
    active.sort(function (a, b) { return b.getAttribute("href").length - a.getAttribute("href").length; });
    active.slice(1).forEach(function (link) {
      link.classList.remove("active");
      link.removeAttribute("aria-current");
    });
  }

  function start() {
    markActiveLink();
    markTheme();
    connectNotifications();
    drawCharts();
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
