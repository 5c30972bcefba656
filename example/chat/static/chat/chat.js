// The demo chat page: the shipped client (aws_ws_async/client.js, a plain ES module found
// through the page's import map, i.e. through {% static %}) plus what this page shows.
//
// - ChannelsClient fetches a one-time token (CSRF header from the form's token), connects with
//   ?channel=<room>&ws_token=…, reconnects with jittered backoff, rotates to a new socket ahead
//   of the gateway's 2-hour cap, pings when quiet, resumes the room from the last seq seen and
//   hands us every message exactly once, in order;
// - the page renders messages, who is online (presence snapshot + join/leave events), and says
//   why the socket is down: a frame too large (1009), the server or the gateway unreachable.
// For tests and curious people, window.demoChat holds the client and what the page received.
import { ChannelsClient } from "aws_ws_async/client.js";

const root = document.getElementById("chat");
if (root) {
  start(root);
}

function start(root) {
  const data = root.dataset;
  const channel = data.channel;
  const statusEl = document.getElementById("status");
  const list = document.getElementById("messages");
  const form = document.getElementById("send-form");
  const input = document.getElementById("message-input");
  const onlineList = document.getElementById("presence-list");
  const onlineCount = document.getElementById("presence-count");
  const received = [];
  const online = new Map(); // user -> connections
  let lastNotice = "";
  let announceJoin = true; // the next "subscribed" of the room follows a (re)connect
  let joinedBefore = false;
  let recheck = null;

  function notice(text) {
    if (text !== lastNotice) {
      // One line per distinct problem, not one per retry.
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
    const atBottom = list.scrollHeight - list.scrollTop - list.clientHeight < 40;
    list.append(item);
    if (atBottom) {
      list.scrollTop = list.scrollHeight;
    }
  }

  function renderOnline(count) {
    onlineList.replaceChildren(
      ...[...online.entries()]
        .sort(([a], [b]) => a.localeCompare(b))
        .map(([user, connections]) => {
          const item = document.createElement("li");
          item.dataset.user = user;
          const name = document.createElement("span");
          name.className = "user";
          name.textContent = user;
          item.append(name);
          if (connections > 1) {
            const tabs = document.createElement("small");
            tabs.textContent = ` ${connections} tabs`;
            item.append(tabs);
          }
          return item;
        }),
    );
    onlineCount.textContent = String(count ?? online.size);
  }

  if (!data.wsUrl) {
    setStatus("closed", "no gateway configured");
    return;
  }
  const options = {
    url: data.wsUrl,
    tokenUrl: data.tokenUrl,
    csrfToken: root.querySelector("input[name=csrfmiddlewaretoken]").value,
    channels: [channel],
  };
  // run_demo.py --client-max-age-ms / --client-ping-ms (short timers for tests).
  if (data.maxAgeMs) options.maxAgeMs = Number(data.maxAgeMs);
  if (data.pingIntervalMs) options.pingIntervalMs = Number(data.pingIntervalMs);
  if (data.subscribeTimeoutMs) options.subscribeTimeoutMs = Number(data.subscribeTimeoutMs);
  // ?since=0: resume the room after that seq (0: everything history still keeps).
  const since = new URLSearchParams(location.search).get("since");
  if (since !== null && /^\d+$/.test(since)) options.since = { [channel]: Number(since) };
  const client = new ChannelsClient(options);
  const log = { client, received, gaps: [], closes: [], opens: [], welcomes: [], presence: [], timeline: [] };
  window.demoChat = log;
  for (const type of ["open", "close", "subscribed", "reconnecting", "gap", "error"]) {
    // What happened when (ms since the page loaded): the first thing to read when debugging.
    client.addEventListener(type, ({ detail }) => {
      log.timeline.push([Math.round(performance.now()), type, JSON.stringify(detail)]);
      if (log.timeline.length > 500) log.timeline.shift();
    });
  }

  client.addEventListener("message", ({ detail }) => {
    received.push({ channel: detail.channel, seq: detail.seq, data: detail.data });
    const message = detail.data || {};
    addLine("message", message.author, message.message, message.sent_at);
  });
  client.addEventListener("subscribed", ({ detail }) => {
    if (detail.channel !== channel || !announceJoin) {
      return; // a rotation's re-subscribe: nothing to tell
    }
    announceJoin = false;
    lastNotice = "";
    addLine("system", "", (joinedBefore ? "rejoined #" : "joined #") + channel);
    joinedBefore = true;
    client.presence(channel); // who is here now (also after a reconnect)
  });
  client.addEventListener("open", ({ detail }) => {
    log.opens.push(detail);
    setStatus("open", "connected");
  });
  client.addEventListener("close", ({ detail }) => {
    log.closes.push(detail);
    announceJoin = true;
    if (detail.code === 1009) {
      notice("Your message was too large: the gateway accepts at most 32 KB per frame and closed the connection. Reconnecting…");
    } else if (!detail.opened && detail.code !== 0) {
      // Browsers report a refused handshake and an unreachable host alike (1006).
      notice("Cannot open the socket to the gateway (" + data.wsUrl + "): it is down, unreachable, or refused #" + channel + ".");
    }
    if (!detail.willReconnect) {
      setStatus("closed", "disconnected");
    }
  });
  client.addEventListener("reconnecting", ({ detail }) => {
    setStatus("waiting", "reconnecting in " + Math.ceil(detail.delayMs / 1000) + " s");
  });
  client.addEventListener("gap", ({ detail }) => {
    log.gaps.push(detail);
    addLine("error notice", "", `Missed messages ${detail.since + 1}–${detail.oldest - 1} of #${detail.channel}: reload to see them.`);
  });
  client.addEventListener("error", ({ detail }) => {
    if (detail.kind === "unauthorized") {
      window.location.href = data.loginUrl + "?next=" + encodeURIComponent(location.pathname + location.search);
    } else if (detail.kind === "unreachable") {
      notice("Cannot reach the server (" + location.host + "): is the demo still running?");
    } else if (detail.kind === "token") {
      notice("The server answered " + (detail.status ?? "badly") + " when asked for a connect token.");
    } else if (detail.kind === "gateway") {
      addLine("error", "", "gateway: " + detail.message); // API Gateway's own error frames
    }
  });
  client.addEventListener("presence", ({ detail }) => {
    if (detail.channel !== channel) {
      return;
    }
    log.presence.push(detail);
    if (detail.event === "snapshot") {
      online.clear();
      for (const entry of detail.users) {
        online.set(entry.user, entry.connections);
      }
    } else if (detail.event === "join") {
      // A hint: a user already listed (a tab that reconnected) is not announced twice.
      if (!online.has(detail.user)) {
        addLine("system presence", "", detail.user + " joined");
      }
      online.set(detail.user, detail.connections);
    } else if (detail.event === "leave") {
      if (online.has(detail.user)) {
        addLine("system presence", "", detail.user + " left");
      }
      online.delete(detail.user);
    }
    if (detail.event !== "snapshot") {
      // Events are hints (a tab reconnecting can race its own leave): confirm with a snapshot.
      clearTimeout(recheck);
      recheck = setTimeout(() => client.presence(channel), 1000);
    }
    renderOnline(detail.count);
  });
  client.addEventListener("frame", ({ detail }) => {
    if (detail.frame && detail.frame.type === "welcome") {
      log.welcomes.push(detail.frame);
    }
  });

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const text = input.value.trim();
    if (text && client.send({ action: "send_message", channel, message: text })) {
      input.value = "";
      input.focus();
    }
  });

  // Leaving the page (or entering the back/forward cache) closes the socket, so the server
  // stops broadcasting to a page nobody sees; coming back from the cache reconnects (and
  // resumes from the last seq seen).
  window.addEventListener("pagehide", () => client.close(1000, "page hidden"));
  window.addEventListener("pageshow", (event) => {
    if (event.persisted) {
      announceJoin = true;
      client.connect();
    }
  });

  // And a snapshot now and then (one query on the server), in case an event never came.
  setInterval(() => {
    if (client.state === "open" && document.visibilityState === "visible") {
      client.presence(channel);
    }
  }, 10000);

  setStatus("connecting", "connecting…");
  client.connect();
}
