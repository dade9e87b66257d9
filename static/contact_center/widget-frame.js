/* fedele web chat: the panel inside the widget's iframe (served by fedele, so its websocket and
   uploads are same-origin). Everything the server or the agent sends is rendered with textContent:
   never as HTML. The visitor's token lives in this frame's localStorage and resumes the chat after a
   reload or a lost connection; unacknowledged messages are sent again with the same client id (the
   server stores each once). */
(function () {
  "use strict";

  var config = JSON.parse(document.getElementById("chat-config").textContent);
  var texts = JSON.parse(document.getElementById("chat-texts").textContent);
  var storageKey = "fedele-chat:" + config.key;
  var base = "/contact-center/chat/" + encodeURIComponent(config.key) + "/";
  var root = document.getElementById("chat");
  var prechat = document.getElementById("chat-prechat");
  var conversation = document.getElementById("chat-conversation");
  var list = document.getElementById("chat-messages");
  var input = document.getElementById("chat-input");
  var typingLine = document.getElementById("chat-typing");
  var errorLine = document.getElementById("chat-error");
  var statusLine = document.getElementById("chat-status");
  var endPanel = document.getElementById("chat-end");
  var donePanel = document.getElementById("chat-done");
  var endOpen = document.getElementById("chat-end-open");

  var socket = null;
  var token = readToken();
  var visitorEmail = "";
  var pending = {}; // client id -> body, until the server acknowledges it
  var shown = {}; // message ids already on screen
  var retryDelay = 1000;
  var ended = false;
  var typingSent = false;
  var typingTimer = null;

  function readToken() {
    try { return window.localStorage.getItem(storageKey) || ""; } catch (e) { return ""; }
  }
  function saveToken(value) {
    token = value;
    try {
      if (value) { window.localStorage.setItem(storageKey, value); } else { window.localStorage.removeItem(storageKey); }
    } catch (e) { /* storage may be blocked: the chat still works until the page closes */ }
  }
  function format(text, values) {
    return text.replace(/%\((\w+)\)s/g, function (_, name) { return values[name] === undefined ? "" : String(values[name]); });
  }
  function tell(kind, data) {
    if (window.parent !== window) { window.parent.postMessage(Object.assign({ type: "fedele-chat:" + kind }, data || {}), "*"); }
  }
  function newId() {
    if (window.crypto && window.crypto.randomUUID) { return window.crypto.randomUUID().replace(/-/g, ""); }
    return String(Date.now()) + Math.random().toString(16).slice(2);
  }
  function show(view) {
    prechat.hidden = view !== "prechat";
    conversation.hidden = view !== "chat";
    endPanel.hidden = view !== "end";
    donePanel.hidden = view !== "done";
    endOpen.hidden = view !== "chat";
    root.setAttribute("data-view", view);
  }
  function setError(element, message) {
    element.textContent = message || "";
    element.hidden = !message;
  }

  // --- messages -----------------------------------------------------------------------------------

  function addMessage(message) {
    if (message.id && shown[message.id]) { return; }
    if (message.id) { shown[message.id] = true; }
    if (message.client_id && list.querySelector('[data-client-id="' + message.client_id + '"]')) {
      return; // shown when the visitor sent it
    }
    var item = document.createElement("li");
    item.className = "chat-message chat-from-" + (message.sender === "customer" ? "visitor" : message.sender);
    if (message.client_id) { item.setAttribute("data-client-id", message.client_id); }
    item.setAttribute("data-testid", "chat-message");
    var author = document.createElement("span");
    author.className = "chat-author";
    author.textContent = message.sender === "customer" ? texts.you : (message.author || texts.agent);
    item.appendChild(author);
    if (message.body) {
      var body = document.createElement("p");
      body.className = "chat-body";
      body.textContent = message.body;
      item.appendChild(body);
    }
    (message.attachments || []).forEach(function (file) {
      var link = document.createElement("a");
      link.className = "chat-file";
      link.href = file.url;
      link.target = "_blank";
      link.rel = "noopener";
      link.textContent = texts.file + ": " + file.name;
      item.appendChild(link);
    });
    list.appendChild(item);
    list.scrollTop = list.scrollHeight;
    if (message.sender !== "customer") { tell("unread"); }
  }

  function sendMessage(body, clientId) {
    pending[clientId] = body;
    if (socket && socket.readyState === WebSocket.OPEN) {
      socket.send(JSON.stringify({ type: "message", body: body, client_id: clientId }));
    }
  }

  // --- the websocket ------------------------------------------------------------------------------

  function connect() {
    if (!token) { return; }
    var scheme = window.location.protocol === "https:" ? "wss://" : "ws://";
    statusLine.textContent = texts.connecting;
    socket = new WebSocket(scheme + window.location.host + "/ws/contact-center/chat/" + encodeURIComponent(config.key) + "/");
    socket.onopen = function () {
      socket.send(JSON.stringify({ type: "resume", token: token }));
    };
    socket.onmessage = function (event) {
      var data;
      try { data = JSON.parse(event.data); } catch (e) { return; }
      handle(data);
    };
    socket.onclose = function (event) {
      socket = null;
      if (ended || event.code === 4401 || event.code === 4403) { return; }
      statusLine.textContent = texts.reconnecting;
      window.setTimeout(connect, retryDelay);
      retryDelay = Math.min(retryDelay * 2, 15000);
    };
  }

  function handle(data) {
    if (data.type === "ready") {
      retryDelay = 1000;
      if (data.state !== "active") { finish(false); return; }
      show("chat");
      statusLine.textContent = data.agent ? texts.connected + " · " + data.agent : texts.waiting;
      (data.messages || []).forEach(addMessage);
      Object.keys(pending).forEach(function (clientId) { sendMessage(pending[clientId], clientId); });
    } else if (data.type === "ack") {
      delete pending[data.client_id];
    } else if (data.type === "message") {
      if (data.sender === "agent" && data.author) { statusLine.textContent = texts.connected + " · " + data.author; }
      addMessage(data);
      if (data.sender === "agent") { typingLine.hidden = true; }
    } else if (data.type === "typing") {
      typingLine.hidden = !data.typing;
    } else if (data.type === "ended") {
      finish(false);
    } else if (data.type === "error") {
      if (data.client_id) { delete pending[data.client_id]; }
      if (data.code === "chat_token_invalid") { saveToken(""); show("prechat"); return; }
      setError(errorLine, data.message || texts.failed);
    }
  }

  function finish(withTranscript) {
    ended = true;
    saveToken("");
    document.getElementById("chat-done-text").textContent = withTranscript ? texts.endedTranscript : texts.ended;
    show("done");
    var closing = socket;
    // A moment for the "end" frame to leave before the connection closes.
    if (closing) { window.setTimeout(function () { closing.close(); }, 500); }
  }

  // --- the pre-chat form --------------------------------------------------------------------------

  var offline = root.getAttribute("data-state") === "offline";
  document.getElementById("chat-first-message-label").hidden = false;
  var reference = newId();

  prechat.addEventListener("submit", function (event) {
    event.preventDefault();
    var form = new FormData(prechat);
    var button = document.getElementById("chat-prechat-submit");
    button.disabled = true;
    setError(document.getElementById("chat-prechat-error"), "");
    visitorEmail = String(form.get("email") || "");
    fetch(base + "start/", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({
        name: form.get("name") || "",
        email: visitorEmail,
        topic: form.get("topic") || "",
        message: form.get("message") || "",
        consent: form.get("consent") === "on",
        language: document.documentElement.lang,
        client_reference: reference,
        page_origin: document.referrer ? new URL(document.referrer).origin : ""
      })
    }).then(function (response) {
      return response.json().then(function (data) { return { ok: response.ok, data: data }; });
    }).then(function (result) {
      button.disabled = false;
      if (!result.ok) {
        var error = result.data.error || {};
        var fields = error.fields || {};
        var first = Object.keys(fields).map(function (name) { return fields[name][0]; })[0];
        setError(document.getElementById("chat-prechat-error"), first || error.message || texts.failed);
        return;
      }
      if (result.data.offline) {
        document.getElementById("chat-done-text").textContent = format(texts.offlineSent, { ticket: result.data.ticket_number });
        ended = true;
        show("done");
        return;
      }
      // The transcript goes only to the pre-chat address: shown read-only, offered only when given.
      document.getElementById("chat-transcript-email").value = visitorEmail;
      document.getElementById("chat-transcript").hidden = !visitorEmail;
      saveToken(result.data.token);
      ended = false;
      show("chat");
      connect();
    }).catch(function () {
      button.disabled = false;
      setError(document.getElementById("chat-prechat-error"), texts.failed);
    });
  });

  // --- the composer -------------------------------------------------------------------------------

  function sendTyping(value) {
    if (typingSent === value || !socket || socket.readyState !== WebSocket.OPEN) { return; }
    typingSent = value;
    socket.send(JSON.stringify({ type: "typing", typing: value }));
  }

  input.addEventListener("input", function () {
    sendTyping(input.value.trim().length > 0);
    window.clearTimeout(typingTimer);
    typingTimer = window.setTimeout(function () { sendTyping(false); }, 4000);
  });
  input.addEventListener("keydown", function (event) {
    if (event.key === "Enter" && !event.shiftKey) {
      event.preventDefault();
      document.getElementById("chat-composer").requestSubmit();
    }
  });

  document.getElementById("chat-composer").addEventListener("submit", function (event) {
    event.preventDefault();
    var body = input.value.trim();
    if (!body) { return; }
    if (body.length > config.maxMessageChars) {
      setError(errorLine, format(texts.tooLong, { limit: config.maxMessageChars }));
      return;
    }
    setError(errorLine, "");
    var clientId = newId();
    addMessage({ id: "", client_id: clientId, sender: "customer", body: body, attachments: [] });
    input.value = "";
    sendTyping(false);
    sendMessage(body, clientId);
  });

  document.getElementById("chat-file").addEventListener("change", function (event) {
    var file = event.target.files && event.target.files[0];
    event.target.value = "";
    if (!file) { return; }
    if (file.size > config.maxUploadBytes) { setError(errorLine, texts.fileTooLarge); return; }
    var data = new FormData();
    data.append("file", file);
    fetch(base + "upload/", { method: "POST", headers: { "X-Chat-Token": token }, body: data })
      .then(function (response) { return response.json().then(function (body) { return { ok: response.ok, body: body }; }); })
      .then(function (result) {
        if (!result.ok) { setError(errorLine, (result.body.error || {}).message || texts.failed); return; }
        setError(errorLine, "");
        addMessage(result.body.message);
      })
      .catch(function () { setError(errorLine, texts.failed); });
  });

  // --- ending -------------------------------------------------------------------------------------

  endOpen.addEventListener("click", function () { show("end"); });
  document.getElementById("chat-end-cancel").addEventListener("click", function () { show("chat"); });
  document.getElementById("chat-end-confirm").addEventListener("click", function () {
    var wanted = Boolean(visitorEmail) && document.getElementById("chat-transcript-wanted").checked;
    var address = wanted ? document.getElementById("chat-transcript-email").value.trim() : "";
    if (socket && socket.readyState === WebSocket.OPEN) {
      socket.send(JSON.stringify({ type: "end", transcript_to: address }));
    }
    finish(Boolean(address));
  });
  document.getElementById("chat-restart").addEventListener("click", function () {
    list.textContent = "";
    shown = {};
    pending = {};
    reference = newId();
    prechat.reset();
    show("prechat");
  });
  document.getElementById("chat-minimise").addEventListener("click", function () { tell("minimise"); });

  if (offline) {
    document.getElementById("chat-prechat-submit").textContent = document.getElementById("chat-prechat-submit").getAttribute("data-label-offline");
  }
  tell("ready", { colour: getComputedStyle(document.documentElement).getPropertyValue("--chat-colour").trim() });
  if (token) { show("chat"); connect(); } else { show("prechat"); }
})();
