// The demo's WebSocket client: plain JavaScript, no dependencies.
//
// 1. POST to the token view (same origin, session cookie + CSRF token) for a one-time token;
// 2. open ws(s)://<gateway>/<stage>?channel=<room>&ws_token=<token> (browsers cannot set
//    headers on a WebSocket, so the token travels in the query string);
// 3. send {"action": "send_message", "message": ...}; render what the server broadcasts;
// 4. on close (idle timeout, 2-hour limit, server restart), reconnect with exponential
//    backoff and jitter, fetching a fresh token each time (tokens are single-use);
// 5. say in the page why: a message too large (close 1009), the server or the gateway
//    unreachable, the room refused. Each notice is shown once until the state changes.
"use strict";

(function () {
  const root = document.getElementById("chat");
  if (!root) {
    return;
  }
  const wsUrl = root.dataset.wsUrl;
  const tokenUrl = root.dataset.tokenUrl;
  const loginUrl = root.dataset.loginUrl;
  const channel = root.dataset.channel;
  const csrfToken = root.querySelector("input[name=csrfmiddlewaretoken]").value;
  const statusEl = document.getElementById("status");
  const list = document.getElementById("messages");
  const form = document.getElementById("send-form");
  const input = document.getElementById("message-input");

  const MAX_DELAY_MS = 30000;
  let socket = null;
  let attempt = 0;
  let leaving = false;
  let lastNotice = "";

  function notice(text) {
    // One line per distinct problem, not one per retry.
    if (text !== lastNotice) {
      lastNotice = text;
      addLine("error notice", "", text);
    }
  }

  function setStatus(state, text) {
    statusEl.dataset.state = state;
    statusEl.textContent = text;
    input.disabled = state !== "open";
  }

  function addLine(kind, author, text, time) {
    const item = document.createElement("li");
    item.className = kind;
    if (time) {
      const stamp = document.createElement("time");
      stamp.dateTime = time;
      stamp.textContent = new Date(time).toLocaleTimeString();
      item.append(stamp, " ");
    }
    if (author) {
      const who = document.createElement("strong");
      who.className = "author";
      who.textContent = author;
      item.append(who, " ");
    }
    const body = document.createElement("span");
    body.className = "text";
    body.textContent = text; // never innerHTML: messages are user input
    item.append(body);
    list.append(item);
    list.scrollTop = list.scrollHeight;
  }

  function render(raw) {
    let data;
    try {
      data = JSON.parse(raw);
    } catch (error) {
      addLine("system", "", raw);
      return;
    }
    if (data.type === "message") {
      addLine("message", data.author, data.message, data.sent_at);
    } else if (data.type === "welcome") {
      addLine("system", "", "joined #" + data.channel);
    } else if (data.message && data.connectionId) {
      addLine("error", "", "gateway: " + data.message); // API Gateway's own error frames
    } else {
      addLine("system", "", raw);
    }
  }

  async function fetchToken() {
    let response;
    try {
      response = await fetch(tokenUrl, {
        method: "POST",
        credentials: "same-origin",
        headers: { "X-CSRFToken": csrfToken },
      });
    } catch (error) {
      // fetch() rejects only when no answer came at all: Django is down or unreachable.
      notice("Cannot reach the server (" + location.host + "): is the demo still running?");
      throw new Error("server unreachable");
    }
    if (response.status === 401 || response.status === 403) {
      window.location.href = loginUrl + "?next=" + encodeURIComponent(location.pathname + location.search);
      throw new Error("not logged in");
    }
    if (!response.ok) {
      notice("The server answered " + response.status + " when asked for a connect token.");
      throw new Error("token request failed: " + response.status);
    }
    return (await response.json()).token;
  }

  function scheduleReconnect(reason) {
    const ceiling = Math.min(MAX_DELAY_MS, 500 * 2 ** attempt);
    const delay = ceiling / 2 + Math.random() * (ceiling / 2);
    attempt += 1;
    setStatus("waiting", reason + ", retrying in " + Math.ceil(delay / 1000) + " s");
    setTimeout(connect, delay);
  }

  async function connect() {
    if (!wsUrl) {
      setStatus("closed", "no gateway configured");
      return;
    }
    setStatus("connecting", "connecting…");
    let token;
    try {
      token = await fetchToken();
    } catch (error) {
      scheduleReconnect(error.message === "server unreachable" ? "server unreachable" : "no token");
      return;
    }
    const url = wsUrl + "?channel=" + encodeURIComponent(channel) + "&ws_token=" + encodeURIComponent(token);
    const ws = new WebSocket(url);
    let opened = false;
    socket = ws;
    ws.addEventListener("open", function () {
      opened = true;
      attempt = 0;
      lastNotice = "";
      setStatus("open", "connected");
    });
    ws.addEventListener("message", function (event) {
      render(event.data);
    });
    ws.addEventListener("close", function (event) {
      if (socket === ws) {
        socket = null;
      }
      if (leaving) {
        return;
      }
      if (event.code === 1009) {
        notice("Your message was too large: the gateway accepts at most 32 KB per frame and closed the connection. Reconnecting…");
      } else if (!opened) {
        // Browsers report a refused handshake and an unreachable host alike (1006).
        notice("Cannot open the socket to the gateway (" + wsUrl + "): it is down, unreachable, or refused #" + channel + ".");
      }
      scheduleReconnect("disconnected (" + event.code + ")");
    });
  }

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    const text = input.value.trim();
    if (!text || !socket || socket.readyState !== WebSocket.OPEN) {
      return;
    }
    socket.send(JSON.stringify({ action: "send_message", message: text }));
    input.value = "";
    input.focus();
  });

  // Leaving the page (or entering the back/forward cache) closes the socket, so the server
  // stops broadcasting to a page nobody sees; coming back from the cache reconnects.
  window.addEventListener("pagehide", function () {
    leaving = true;
    if (socket) {
      socket.close(1000, "page hidden");
    }
  });
  window.addEventListener("pageshow", function (event) {
    if (event.persisted) {
      leaving = false;
      attempt = 0;
      connect();
    }
  });

  connect();
})();
