/* fedele web chat loader. A site embeds it with
     <script src="https://fedele.example/contact-center/chat/widget.js" data-widget="KEY" async></script>
   (optional: data-lang="it|en", data-colour="#1f6feb", data-position="left").
   It draws a launcher button in a Shadow DOM (so the host page's CSS cannot touch it and ours cannot
   leak out) and opens the chat in an iframe served by fedele; the iframe is where the conversation
   runs, on fedele's origin. Messages from the iframe are accepted only from that origin. */
(function () {
  "use strict";
  var script = document.currentScript || document.querySelector("script[data-widget]");
  if (!script || window.__fedeleChatLoaded) { return; }
  window.__fedeleChatLoaded = true;
  var key = script.getAttribute("data-widget") || "";
  var origin = new URL(script.src, window.location.href).origin;
  var lang = (script.getAttribute("data-lang") || navigator.language || "it").slice(0, 2).toLowerCase();
  lang = lang === "it" ? "it" : "en";
  var colour = script.getAttribute("data-colour") || "#1f6feb";
  var left = script.getAttribute("data-position") === "left";
  var labels = lang === "it"
    ? { open: "Chatta con noi", close: "Chiudi la chat", title: "Chat" }
    : { open: "Chat with us", close: "Close the chat", title: "Chat" };

  function build() {
    var host = document.createElement("div");
    host.id = "fedele-chat";
    host.setAttribute("data-testid", "fedele-chat-host");
    var root = host.attachShadow ? host.attachShadow({ mode: "open" }) : host;
    var side = left ? "left" : "right";
    var style = document.createElement("style");
    style.textContent =
      ":host{all:initial}" +
      ".launcher{position:fixed;bottom:20px;" + side + ":20px;z-index:2147483000;width:56px;height:56px;" +
      "border-radius:50%;border:0;cursor:pointer;background:var(--c);color:#fff;display:flex;align-items:center;justify-content:center;" +
      "box-shadow:0 4px 14px rgba(0,0,0,.25)}" +
      ".launcher:focus-visible{outline:3px solid #000;outline-offset:3px}" +
      ".badge{position:absolute;top:-2px;right:-2px;width:14px;height:14px;border-radius:50%;background:#d00;display:none}" +
      ".launcher[data-unread] .badge{display:block}" +
      ".panel{position:fixed;bottom:88px;" + side + ":20px;z-index:2147483001;width:370px;height:min(600px,calc(100vh - 108px));" +
      "border:0;border-radius:12px;box-shadow:0 8px 30px rgba(0,0,0,.3);background:#fff;display:none}" +
      ".panel[data-open]{display:block}" +
      "@media (max-width:480px){.panel{inset:0;width:100%;height:100%;border-radius:0}" +
      ".launcher[data-open]{display:none}}";
    root.appendChild(style);
    var button = document.createElement("button");
    button.type = "button";
    button.className = "launcher";
    button.style.setProperty("--c", colour);
    button.setAttribute("aria-label", labels.open);
    button.setAttribute("aria-expanded", "false");
    button.setAttribute("data-testid", "fedele-chat-launcher");
    button.innerHTML = '<svg aria-hidden="true" width="26" height="26" viewBox="0 0 24 24" fill="none" ' +
      'stroke="currentColor" stroke-width="2" stroke-linejoin="round"><path d="M4 5h16v11H9l-5 4z"/></svg>' +
      '<span class="badge"></span>';
    var frame = document.createElement("iframe");
    frame.className = "panel";
    frame.title = labels.title;
    frame.setAttribute("data-testid", "fedele-chat-frame");
    frame.src = origin + "/contact-center/chat/" + encodeURIComponent(key) + "/frame/?lang=" + lang;
    frame.setAttribute("allow", "clipboard-write");
    root.appendChild(frame);
    root.appendChild(button);
    document.body.appendChild(host);

    function setOpen(open) {
      if (open) { frame.setAttribute("data-open", ""); button.setAttribute("data-open", ""); button.removeAttribute("data-unread"); }
      else { frame.removeAttribute("data-open"); button.removeAttribute("data-open"); }
      button.setAttribute("aria-expanded", open ? "true" : "false");
      button.setAttribute("aria-label", open ? labels.close : labels.open);
    }
    button.addEventListener("click", function () { setOpen(!frame.hasAttribute("data-open")); });
    window.addEventListener("message", function (event) {
      if (event.origin !== origin || event.source !== frame.contentWindow || !event.data) { return; }
      var type = event.data.type;
      if (type === "fedele-chat:minimise") { setOpen(false); button.focus(); }
      else if (type === "fedele-chat:unread" && !frame.hasAttribute("data-open")) { button.setAttribute("data-unread", ""); }
      else if (type === "fedele-chat:ready" && event.data.colour && !script.getAttribute("data-colour")) {
        button.style.setProperty("--c", String(event.data.colour));
      }
    });
  }

  if (document.body) { build(); } else { document.addEventListener("DOMContentLoaded", build); }
})();
