// aws_ws_async browser client: a plain ES module, no build step, no dependency.
//
//   import { ChannelsClient } from "{% static 'aws_ws_async/client.js' %}";
//   const client = new ChannelsClient({ url: "wss://…/prod", tokenUrl: "/ws-token/", channels: ["room"] });
//   client.addEventListener("message", (e) => console.log(e.detail.channel, e.detail.seq, e.detail.data));
//   client.connect();
//
// Why each piece exists (API Gateway WebSocket facts, see docs/client.md):
// - tokens are single use and browsers cannot set headers on a WebSocket: POST the project's
//   token view (session cookie + CSRF header) before every socket, pass it as ?ws_token=;
// - the gateway closes every socket after 2 hours: open a new socket shortly before, resume on
//   it, then close the old one (frames seen on both are dropped by sequence number);
// - it closes a socket idle for 10 minutes: send {"action": "ping"} when nothing else was sent;
// - sockets drop: reconnect with jittered exponential backoff and resume each channel from the
//   last sequence seen; the server replays what was missed (at least once), the client makes it
//   exactly once and in order (duplicates dropped, early frames held until the hole fills).

const DEFAULTS = Object.freeze({
  channelParam: "channel",
  tokenParam: "ws_token",
  csrfCookieName: "csrftoken",
  csrfHeaderName: "X-CSRFToken",
  minDelayMs: 500,
  maxDelayMs: 30000,
  healthyMs: 10000,
  // API Gateway's cap is 2 h; rotate 5 minutes before it.
  maxAgeMs: 2 * 60 * 60 * 1000 - 5 * 60 * 1000,
  // Under the 10-minute idle timeout with a wide margin.
  pingIntervalMs: 5 * 60 * 1000,
  holdMs: 3000,
  // A socket whose first channel is not confirmed ("subscribed") this long after opening is
  // useless (e.g. the server dropped its session): close it and connect again.
  subscribeTimeoutMs: 10000,
  maxHeld: 1000,
});

/** Equal jitter: a delay in [ceiling / 2, ceiling], ceiling = min(max, min * 2 ** attempt). */
export function backoffDelay(attempt, { minDelayMs, maxDelayMs }, random = Math.random) {
  const ceiling = Math.min(maxDelayMs, minDelayMs * 2 ** Math.max(0, attempt));
  return ceiling / 2 + random() * (ceiling / 2);
}

function readCookie(name) {
  if (typeof document === "undefined" || !document.cookie) {
    return "";
  }
  for (const part of document.cookie.split(";")) {
    const [key, ...rest] = part.trim().split("=");
    if (key === name) {
      return decodeURIComponent(rest.join("="));
    }
  }
  return "";
}

/** Per channel: the last sequence delivered and the frames that came early. */
class ChannelState {
  constructor(since) {
    this.lastSeq = Number.isInteger(since) ? since : null;
    this.held = new Map();
    this.holdTimer = null;
    this.resyncing = false;
  }
}

export class ChannelsClient extends EventTarget {
  constructor(options) {
    super();
    if (!options || typeof options.url !== "string" || !options.url) {
      throw new TypeError("ChannelsClient: options.url (the gateway's wss:// URL) is required");
    }
    if (!options.tokenUrl && typeof options.getToken !== "function") {
      throw new TypeError("ChannelsClient: options.tokenUrl or options.getToken is required");
    }
    this.options = { ...DEFAULTS, ...options };
    const env = globalThis;
    this._WebSocket = this.options.WebSocket || env.WebSocket;
    this._fetch = this.options.fetch || (env.fetch ? env.fetch.bind(env) : null);
    this._random = this.options.random || Math.random;
    this._clock = this.options.clock || {
      now: () => Date.now(),
      setTimeout: (fn, ms) => env.setTimeout(fn, ms),
      clearTimeout: (id) => env.clearTimeout(id),
    };
    this._channels = new Map();
    for (const channel of this.options.channels || []) {
      this._channels.set(channel, new ChannelState(null));
    }
    for (const [channel, since] of Object.entries(this.options.since || {})) {
      this._channels.set(channel, new ChannelState(since));
    }
    this._socket = null; // the socket frames are sent on
    this._next = null; // a rotation's new socket, until its subscriptions are confirmed
    this._attempt = 0;
    this._stopped = true;
    this._timers = { reconnect: null, ping: null, age: null, healthy: null, rotate: null, ack: null };
    this._connectCount = 0;
    this._generation = 0;
    this.stats = { received: 0, delivered: 0, duplicates: 0, held: 0, gaps: 0, reconnects: 0, rotations: 0, pings: 0 };
  }

  /** "idle" | "connecting" | "open" | "waiting" | "closed" */
  get state() {
    if (this._stopped) {
      return this._generation ? "closed" : "idle";
    }
    if (this._socket && this._socket.readyState === 1) {
      return "open";
    }
    return this._timers.reconnect !== null ? "waiting" : "connecting";
  }

  get channels() {
    return [...this._channels.keys()];
  }

  lastSeq(channel) {
    const state = this._channels.get(channel);
    return state ? state.lastSeq : null;
  }

  /** Open the connection (and keep it open until close()). */
  connect() {
    if (!this._stopped) {
      return;
    }
    this._stopped = false;
    this._generation += 1;
    this._attempt = 0;
    this._open(false);
  }

  /** Close for good: no reconnect. */
  close(code = 1000, reason = "client closed") {
    this._stopped = true;
    for (const name of Object.keys(this._timers)) {
      this._clear(name);
    }
    for (const state of this._channels.values()) {
      this._stopHold(state);
    }
    for (const ws of [this._next, this._socket]) {
      if (ws) {
        ws._awsDiscard = true;
        ws.close(code, reason);
      }
    }
    this._next = null;
    this._socket = null;
  }

  subscribe(channel, { since } = {}) {
    let state = this._channels.get(channel);
    if (!state) {
      state = new ChannelState(since);
      this._channels.set(channel, state);
    } else if (Number.isInteger(since)) {
      state.lastSeq = since;
    }
    this._sendSubscribe(this._socket, channel, state);
    if (this._next && this._next._awsOpened) {
      this._sendSubscribe(this._next, channel, state); // a rotation in progress: both sockets
    }
  }

  unsubscribe(channel) {
    const state = this._channels.get(channel);
    if (state) {
      this._stopHold(state);
      this._channels.delete(channel);
    }
    if (this._next) {
      this._next._awsPending.delete(channel);
      this._sendOn(this._next, { action: "unsubscribe", channel });
    }
    this.send({ action: "unsubscribe", channel });
  }

  /** Ask for a presence snapshot; it arrives as a "presence" event with event "snapshot". */
  presence(channel) {
    return this.send({ action: "presence", channel });
  }

  /** Send one JSON message on the current socket; false when no socket is open. */
  send(message) {
    return this._sendOn(this._socket, message);
  }

  /** Change timers at runtime (e.g. once the app knows the gateway's limits). */
  configure(options) {
    Object.assign(this.options, options);
    if (this._socket && this._socket.readyState === 1) {
      this._schedulePing();
      if ("maxAgeMs" in options) {
        this._scheduleRotation(this._socket);
      }
    }
  }

  /** on("message", (detail) => …): a shorthand; returns a function that removes the listener. */
  on(type, handler) {
    const listener = (event) => handler(event.detail);
    this.addEventListener(type, listener);
    return () => this.removeEventListener(type, listener);
  }

  // --- internals ---------------------------------------------------------------------------

  _emit(type, detail) {
    this.dispatchEvent(new CustomEvent(type, { detail }));
  }

  _clear(name) {
    if (this._timers[name] !== null) {
      this._clock.clearTimeout(this._timers[name]);
      this._timers[name] = null;
    }
  }

  _later(name, ms, fn) {
    this._clear(name);
    this._timers[name] = this._clock.setTimeout(() => {
      this._timers[name] = null;
      fn();
    }, ms);
  }

  async _token() {
    if (typeof this.options.getToken === "function") {
      return await this.options.getToken();
    }
    const csrf = this.options.csrfToken || readCookie(this.options.csrfCookieName);
    let response;
    try {
      response = await this._fetch(this.options.tokenUrl, {
        method: "POST",
        credentials: "same-origin",
        headers: { [this.options.csrfHeaderName]: csrf },
      });
    } catch (cause) {
      throw Object.assign(new Error("the token URL is unreachable"), { kind: "unreachable", cause });
    }
    if (!response.ok) {
      const fatal = response.status === 401 || response.status === 403;
      throw Object.assign(new Error(`the token URL answered ${response.status}`), {
        kind: fatal ? "unauthorized" : "token",
        status: response.status,
        fatal,
      });
    }
    const body = await response.json();
    if (!body || typeof body.token !== "string") {
      throw Object.assign(new Error("the token URL answered without a token"), { kind: "token" });
    }
    return body.token;
  }

  _url(token) {
    const url = new URL(this.options.url);
    const [first] = this._channels.keys();
    if (first !== undefined) {
      url.searchParams.set(this.options.channelParam, first);
    }
    url.searchParams.set(this.options.tokenParam, token);
    return [url.toString(), first];
  }

  /** Fetch a token and open a socket; rotating = the current socket stays until this one is ready. */
  async _open(rotating) {
    const generation = this._generation;
    let token;
    try {
      token = await this._token();
    } catch (error) {
      if (this._stopped || generation !== this._generation) {
        return;
      }
      this._emit("error", { kind: error.kind || "token", status: error.status, message: error.message, fatal: !!error.fatal });
      if (error.fatal) {
        this._stopped = true;
        this._emit("close", { code: 0, reason: error.message, wasClean: false, willReconnect: false, opened: false });
      } else if (!rotating) {
        this._scheduleReconnect();
      } else {
        this._scheduleRotationRetry();
      }
      return;
    }
    if (this._stopped || generation !== this._generation) {
      return;
    }
    const [url, first] = this._url(token);
    const ws = new this._WebSocket(url);
    // The channel named on $connect: its "subscribed" proves the server knows this socket.
    ws._awsFirst = first;
    ws._awsOpened = false;
    ws._awsLastSent = 0;
    ws._awsPending = new Set();
    if (rotating) {
      this._next = ws;
    } else {
      this._socket = ws;
    }
    this._connectCount += 1;
    ws.addEventListener("open", () => this._onOpen(ws));
    ws.addEventListener("message", (event) => this._onFrame(ws, event.data));
    ws.addEventListener("close", (event) => this._onClose(ws, event));
    ws.addEventListener("error", () => {
      if (!ws._awsDiscard) {
        this._emit("error", { kind: "socket", message: "WebSocket error", opened: ws._awsOpened });
      }
    });
  }

  _onOpen(ws) {
    if (ws._awsDiscard) {
      return;
    }
    ws._awsOpened = true;
    ws._awsOpenedAt = this._clock.now();
    const rotating = ws === this._next;
    for (const [channel, state] of this._channels) {
      this._sendSubscribe(ws, channel, state);
    }
    if (rotating) {
      this._later("rotate", this.options.subscribeTimeoutMs, () => this._rotationTimedOut(ws));
      if (ws._awsPending.size === 0) {
        this._finishRotation(ws);
      }
      return;
    }
    this._becameCurrent(ws, false);
  }

  _confirmed(ws) {
    return ws._awsFirst === undefined || !ws._awsPending.has(ws._awsFirst);
  }

  /** The current socket's first channel was never confirmed: the server does not know it. */
  _ackTimedOut(ws) {
    if (ws !== this._socket || this._confirmed(ws)) {
      return;
    }
    this._emit("error", { kind: "subscribe", message: `no "subscribed" for ${ws._awsFirst}: reconnecting`, fatal: false });
    ws.close(4000, "no answer to subscribe");
  }

  /** A rotation's socket: keep it if its first channel is confirmed, else keep the old one. */
  _rotationTimedOut(ws) {
    if (ws !== this._next) {
      return;
    }
    if (this._confirmed(ws)) {
      this._finishRotation(ws); // only other channels unanswered (refused): rotate anyway
      return;
    }
    this._next = null;
    ws._awsDiscard = true;
    ws.close(4000, "no answer to subscribe");
    this._emit("error", { kind: "subscribe", message: `no "subscribed" for ${ws._awsFirst} on the new socket`, fatal: false });
    this._scheduleRotationRetry();
  }

  _becameCurrent(ws, rotated) {
    this._later("healthy", this.options.healthyMs, () => {
      this._attempt = 0;
    });
    this._schedulePing();
    this._scheduleRotation(ws);
    if (!this._confirmed(ws)) {
      this._later("ack", this.options.subscribeTimeoutMs, () => this._ackTimedOut(ws));
    }
    const reconnect = this._connectCount > 1;
    this._emit("open", { reconnect, rotated });
  }

  _scheduleRotation(ws) {
    const maxAge = this.options.maxAgeMs;
    if (!maxAge || maxAge <= 0) {
      this._clear("age");
      return;
    }
    const age = this._clock.now() - (ws._awsOpenedAt || this._clock.now());
    this._later("age", Math.max(0, maxAge - age), () => this._rotate());
  }

  _scheduleRotationRetry() {
    this._later("age", backoffDelay(1, this.options, this._random), () => this._rotate());
  }

  _rotate() {
    if (this._stopped || this._next || !this._socket || this._socket.readyState !== 1) {
      return;
    }
    this._open(true);
  }

  /** The new socket confirmed every subscription (or the wait ran out): it replaces the old. */
  _finishRotation(ws) {
    if (ws !== this._next) {
      return;
    }
    this._clear("rotate");
    const old = this._socket;
    this._next = null;
    this._socket = ws;
    this.stats.rotations += 1;
    if (old) {
      old._awsDiscard = true;
      old.close(1000, "rotated");
    }
    this._becameCurrent(ws, true);
  }

  _onClose(ws, event) {
    if (ws._awsDiscard) {
      return;
    }
    ws._awsDiscard = true;
    const detail = {
      code: event.code,
      reason: event.reason || "",
      wasClean: !!event.wasClean,
      opened: ws._awsOpened,
      willReconnect: !this._stopped,
    };
    if (ws === this._next) {
      // A rotation's socket failed: keep the current one and retry the rotation later.
      this._next = null;
      this._clear("rotate");
      if (!this._stopped) {
        this._scheduleRotationRetry();
      }
      return;
    }
    if (ws !== this._socket) {
      return;
    }
    this._socket = null;
    this._clear("ping");
    this._clear("healthy");
    this._clear("ack");
    if (this._next) {
      // Closed by the gateway while its successor is on the way: the successor takes over.
      const next = this._next;
      detail.willReconnect = true;
      this._emit("close", detail);
      if (next.readyState === 1) {
        this._finishRotation(next);
      } else {
        this._next = null;
        this._socket = next;
        this._clear("rotate");
      }
      return;
    }
    this._clear("age");
    this._emit("close", detail);
    if (!this._stopped) {
      this.stats.reconnects += 1;
      this._scheduleReconnect();
    }
  }

  _scheduleReconnect() {
    const delay = backoffDelay(this._attempt, this.options, this._random);
    this._attempt += 1;
    this._later("reconnect", delay, () => this._open(false));
    this._emit("reconnecting", { delayMs: delay, attempt: this._attempt });
  }

  _schedulePing() {
    const interval = this.options.pingIntervalMs;
    if (!interval || interval <= 0) {
      this._clear("ping");
      return;
    }
    const ws = this._socket;
    if (!ws) {
      return;
    }
    const due = ws._awsLastSent + interval - this._clock.now();
    this._later("ping", Math.max(0, due), () => {
      if (ws !== this._socket || ws.readyState !== 1) {
        return;
      }
      if (this._clock.now() - ws._awsLastSent >= interval) {
        this.stats.pings += 1;
        this._sendOn(ws, { action: "ping" });
      }
      this._schedulePing();
    });
  }

  _sendOn(ws, message) {
    if (!ws || ws.readyState !== 1) {
      return false;
    }
    ws.send(JSON.stringify(message));
    ws._awsLastSent = this._clock.now();
    return true;
  }

  _sendSubscribe(ws, channel, state) {
    const message = { action: "subscribe", channel };
    if (state.lastSeq !== null) {
      message.since = state.lastSeq;
    }
    if (this._sendOn(ws, message)) {
      ws._awsPending.add(channel);
    }
  }

  _onFrame(ws, raw) {
    if (ws._awsDiscard && ws !== this._socket) {
      return;
    }
    let frame;
    try {
      frame = JSON.parse(raw);
    } catch {
      this._emit("frame", { raw });
      return;
    }
    if (!frame || typeof frame !== "object") {
      this._emit("frame", { raw, frame });
      return;
    }
    this.stats.received += 1;
    switch (frame.type) {
      case "message":
        this._onMessage(frame);
        break;
      case "subscribed":
        this._onSubscribed(ws, frame);
        break;
      case "unsubscribed":
        this._emit("unsubscribed", { channel: frame.channel });
        break;
      case "gap":
        this._onServerGap(frame);
        break;
      case "presence":
        this._emit("presence", frame);
        break;
      default:
        if (frame.type === undefined && frame.message && frame.connectionId) {
          // API Gateway's own error frames ({"message": "Internal server error", ...}).
          this._emit("error", { kind: "gateway", message: frame.message, frame });
        } else {
          this._emit("frame", { frame });
        }
    }
  }

  _onMessage(frame) {
    const state = this._channels.get(frame.channel);
    if (!state) {
      return; // unsubscribed meanwhile (or a frame for another page on this connection)
    }
    const seq = frame.seq;
    if (!Number.isInteger(seq)) {
      this._deliver(frame); // history off for this channel: no order to keep
      return;
    }
    if (state.lastSeq === null || seq === state.lastSeq + 1) {
      state.lastSeq = seq;
      this._deliver(frame);
      this._drain(frame.channel, state);
      return;
    }
    if (seq <= state.lastSeq || state.held.has(seq)) {
      this.stats.duplicates += 1;
      return;
    }
    state.held.set(seq, frame);
    this.stats.held += 1;
    if (state.held.size > this.options.maxHeld) {
      this._skipHole(frame.channel, state, "overflow");
    } else if (state.holdTimer === null) {
      this._startHold(frame.channel, state);
    }
  }

  _deliver(frame) {
    this.stats.delivered += 1;
    this._emit("message", { channel: frame.channel, seq: Number.isInteger(frame.seq) ? frame.seq : null, data: frame.data });
  }

  _drain(channel, state) {
    while (state.held.has(state.lastSeq + 1)) {
      const next = state.held.get(state.lastSeq + 1);
      state.held.delete(state.lastSeq + 1);
      state.lastSeq += 1;
      this._deliver(next);
    }
    if (state.held.size === 0) {
      this._stopHold(state);
    }
  }

  _startHold(channel, state) {
    state.holdTimer = this._clock.setTimeout(() => {
      state.holdTimer = null;
      if (state.held.size === 0 || this._channels.get(channel) !== state) {
        return;
      }
      if (!this._socket || this._socket.readyState !== 1) {
        // Between sockets: the next socket's subscribe (with since) asks for the replay.
        this._startHold(channel, state);
      } else if (!state.resyncing) {
        // The hole did not fill by itself: ask the server to replay after the last seq seen.
        state.resyncing = true;
        this._sendSubscribe(this._socket, channel, state);
        this._startHold(channel, state);
      } else {
        this._skipHole(channel, state, "timeout");
      }
    }, this.options.holdMs);
  }

  _stopHold(state) {
    if (state.holdTimer !== null) {
      this._clock.clearTimeout(state.holdTimer);
      state.holdTimer = null;
    }
    state.resyncing = false;
  }

  /** Give up on the hole: report a gap, then deliver what was held, in order. */
  _skipHole(channel, state, why, upTo = Infinity) {
    this._stopHold(state);
    while (state.held.size) {
      if (state.lastSeq + 1 > upTo) {
        this._startHold(channel, state); // a later hole: may still be in flight
        return;
      }
      const oldest = Math.min(...state.held.keys());
      this.stats.gaps += 1;
      this._emit("gap", { channel, since: state.lastSeq, oldest, seq: Math.max(...state.held.keys()), source: "client", reason: why });
      state.lastSeq = oldest - 1;
      this._drain(channel, state);
    }
  }

  _onSubscribed(ws, frame) {
    const channel = frame.channel;
    const state = this._channels.get(channel);
    if (ws._awsPending) {
      ws._awsPending.delete(channel);
    }
    if (state) {
      const seq = Number.isInteger(frame.seq) ? frame.seq : null;
      if (state.lastSeq === null && seq !== null && state.held.size === 0) {
        state.lastSeq = seq; // a first subscription: the next message is seq + 1
      } else if (seq !== null && state.held.size && state.lastSeq !== null && state.lastSeq < seq) {
        // Replay frames come before "subscribed": a hole at or below its seq will not fill.
        this._skipHole(channel, state, "not replayed", seq);
      }
      this._emit("subscribed", { channel, seq });
    }
    if (ws === this._next && ws._awsOpened && ws._awsPending.size === 0) {
      this._finishRotation(ws);
    }
  }

  _onServerGap(frame) {
    const state = this._channels.get(frame.channel);
    if (!state) {
      return;
    }
    // Deliver what was held below the retained history, then continue from "oldest".
    if (Number.isInteger(frame.oldest) && (state.lastSeq === null || state.lastSeq < frame.oldest - 1)) {
      this.stats.gaps += 1;
      this._emit("gap", { channel: frame.channel, since: frame.since, oldest: frame.oldest, seq: frame.seq, source: "server" });
      const below = [...state.held.keys()].filter((s) => s < frame.oldest).sort((a, b) => a - b);
      for (const seq of below) {
        this._deliver(state.held.get(seq));
        state.held.delete(seq);
      }
      state.lastSeq = frame.oldest - 1;
      this._drain(frame.channel, state);
    }
  }
}
