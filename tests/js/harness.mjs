// Fakes for the client's unit tests: a clock we advance by hand, a WebSocket whose server side
// the test drives, and a token endpoint. Nothing here imitates our server's logic: the tests
// play the server's frames explicitly, as the wire protocol (/work/team/protocol.md) says.

import { ChannelsClient } from "../../aws_ws_async/static/aws_ws_async/client.js";

export const flush = () => new Promise((resolve) => setImmediate(resolve));

export class FakeClock {
  constructor() {
    this.t = 1_000_000;
    this.timers = new Map();
    this.nextId = 1;
  }

  now() {
    return this.t;
  }

  setTimeout(fn, ms) {
    const id = this.nextId++;
    this.timers.set(id, { at: this.t + Math.max(0, ms), fn, ms });
    return id;
  }

  clearTimeout(id) {
    this.timers.delete(id);
  }

  /** Run every timer due within `ms`, in time order, letting promises settle between them. */
  async advance(ms) {
    const end = this.t + ms;
    await flush();
    for (;;) {
      let due = null;
      for (const [id, timer] of this.timers) {
        if (timer.at <= end && (due === null || timer.at < due[1].at)) {
          due = [id, timer];
        }
      }
      if (due === null) {
        break;
      }
      this.timers.delete(due[0]);
      this.t = due[1].at;
      due[1].fn();
      await flush();
    }
    this.t = end;
    await flush();
  }
}

export function socketClass() {
  const sockets = [];
  class FakeSocket extends EventTarget {
    constructor(url) {
      super();
      this.url = new URL(url);
      this.readyState = 0;
      this.sent = [];
      this.closedWith = null;
      sockets.push(this);
    }

    send(data) {
      if (this.readyState !== 1) {
        throw new Error("send on a socket that is not open");
      }
      this.sent.push(JSON.parse(data));
    }

    close(code = 1000, reason = "") {
      if (this.readyState >= 2) {
        return;
      }
      this.readyState = 3;
      this.closedWith = { code, reason };
      queueMicrotask(() => this._closeEvent(code, reason));
    }

    // --- the server's side -----------------------------------------------------------------
    open() {
      this.readyState = 1;
      this.dispatchEvent(new Event("open"));
    }

    frame(object) {
      this.dispatchEvent(Object.assign(new Event("message"), { data: JSON.stringify(object) }));
    }

    drop(code = 1001, reason = "Going away") {
      this.readyState = 3;
      this._closeEvent(code, reason);
    }

    _closeEvent(code, reason) {
      this.dispatchEvent(Object.assign(new Event("close"), { code, reason, wasClean: true }));
    }
  }
  return { FakeSocket, sockets };
}

export function tokenEndpoint(status = 200) {
  const calls = [];
  const fetch = async (url, init) => {
    calls.push({ url, init });
    const n = calls.length;
    return { ok: status === 200, status, json: async () => ({ token: `tok${n}` }) };
  };
  return { fetch, calls };
}

/** A client on fakes; `record` collects every event as [type, detail]. */
export function makeClient(options = {}) {
  const clock = new FakeClock();
  const { FakeSocket, sockets } = socketClass();
  const token = tokenEndpoint(options.tokenStatus ?? 200);
  const client = new ChannelsClient({
    url: "wss://gw.example/prod",
    tokenUrl: "/ws-token/",
    csrfToken: "csrf-1",
    channels: ["room"],
    WebSocket: FakeSocket,
    fetch: token.fetch,
    clock,
    random: options.random ?? (() => 0.5),
    ...options.client,
  });
  const events = [];
  for (const type of ["open", "message", "presence", "close", "gap", "error", "subscribed", "frame", "reconnecting"]) {
    client.addEventListener(type, (event) => events.push([type, event.detail]));
  }
  const messages = () => events.filter(([t]) => t === "message").map(([, d]) => d.seq);
  return { client, clock, sockets, token, events, messages };
}

/** Frames of a channel broadcast with history on. */
export const msg = (seq, channel = "room") => ({ type: "message", channel, seq, data: { n: seq } });
