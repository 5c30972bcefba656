// Unit tests of aws_ws_async/static/aws_ws_async/client.js (run: node --test tests/js/).
import assert from "node:assert/strict";
import { test } from "node:test";

import { backoffDelay, ChannelsClient } from "../../aws_ws_async/static/aws_ws_async/client.js";
import { flush, makeClient, msg } from "./harness.mjs";

async function connected(options) {
  const t = makeClient(options);
  t.client.connect();
  await flush();
  assert.equal(t.sockets.length, 1);
  t.sockets[0].open();
  return t;
}

test("backoff: equal jitter between half the ceiling and the ceiling, capped", () => {
  const opts = { minDelayMs: 500, maxDelayMs: 30000 };
  for (let attempt = 0; attempt < 12; attempt++) {
    const ceiling = Math.min(30000, 500 * 2 ** attempt);
    assert.equal(backoffDelay(attempt, opts, () => 0), ceiling / 2);
    assert.equal(backoffDelay(attempt, opts, () => 0.999999) <= ceiling, true);
    assert.equal(backoffDelay(attempt, opts, () => 0.999999) > ceiling * 0.99, true);
  }
  assert.equal(backoffDelay(40, opts, () => 1), 30000);
});

test("reconnect delays grow with failures and reset after a healthy period", async () => {
  const { client, clock, sockets, events } = await connected({ random: () => 1 });
  const delays = () => events.filter(([t]) => t === "reconnecting").map(([, d]) => d.delayMs);
  sockets[0].drop(1006, "");
  await clock.advance(0);
  for (let i = 1; i <= 3; i++) {
    await clock.advance(delays()[i - 1]);
    assert.equal(sockets.length, i + 1);
    sockets[i].drop(1006, ""); // refused before opening
    await clock.advance(0);
  }
  assert.deepEqual(delays(), [500, 1000, 2000, 4000]);
  await clock.advance(4000);
  sockets[4].open();
  sockets[4].frame({ type: "subscribed", channel: "room", seq: 0 });
  await clock.advance(client.options.healthyMs); // stays up: the attempt count resets
  sockets[4].drop(1001, "Going away");
  await clock.advance(0);
  assert.equal(delays().at(-1), 500);
  const closes = events.filter(([t]) => t === "close").map(([, d]) => d);
  assert.equal(closes.length, 5);
  assert.equal(closes.every((c) => c.willReconnect), true);
  assert.deepEqual([closes[4].code, closes[4].reason, closes[4].opened], [1001, "Going away", true]);
  client.close();
});

test("token: POST with the CSRF header, the token and first channel in the socket URL", async () => {
  const { client, sockets, token } = await connected();
  assert.equal(token.calls.length, 1);
  assert.equal(token.calls[0].url, "/ws-token/");
  assert.equal(token.calls[0].init.method, "POST");
  assert.equal(token.calls[0].init.headers["X-CSRFToken"], "csrf-1");
  assert.equal(sockets[0].url.searchParams.get("ws_token"), "tok1");
  assert.equal(sockets[0].url.searchParams.get("channel"), "room");
  assert.deepEqual(sockets[0].sent, [{ action: "subscribe", channel: "room" }]);
  client.close();
  assert.equal(client.state, "closed");
});

test("token refused with 403: an error event, a final close, no reconnect", async () => {
  const { client, clock, sockets, events } = makeClient({ tokenStatus: 403 });
  client.connect();
  await clock.advance(60000);
  assert.equal(sockets.length, 0);
  const [error] = events.filter(([t]) => t === "error").map(([, d]) => d);
  assert.deepEqual([error.kind, error.status, error.fatal], ["unauthorized", 403, true]);
  const [close] = events.filter(([t]) => t === "close").map(([, d]) => d);
  assert.equal(close.willReconnect, false);
  assert.equal(client.state, "closed");
});

test("the constructor refuses a missing url or token source", () => {
  assert.throws(() => new ChannelsClient({ tokenUrl: "/t/" }), TypeError);
  assert.throws(() => new ChannelsClient({ url: "wss://x/y" }), TypeError);
});

test("duplicates by seq are dropped, messages without seq pass through", async () => {
  const { client, sockets, messages, events } = await connected();
  const ws = sockets[0];
  ws.frame({ type: "subscribed", channel: "room", seq: 10 });
  for (const seq of [11, 12, 12, 11, 13]) {
    ws.frame(msg(seq));
  }
  ws.frame({ type: "message", channel: "room", data: "no history" });
  assert.deepEqual(messages(), [11, 12, 13, null]);
  assert.equal(client.stats.duplicates, 2);
  assert.equal(client.lastSeq("room"), 13);
  const last = events.filter(([t]) => t === "message").at(-1)[1];
  assert.deepEqual(last, { channel: "room", seq: null, data: "no history" });
  client.close();
});

test("an early frame is held until the hole fills", async () => {
  const { client, clock, sockets, messages, events } = await connected();
  const ws = sockets[0];
  ws.frame({ type: "subscribed", channel: "room", seq: 0 });
  for (const seq of [1, 2, 4, 5]) {
    ws.frame(msg(seq));
  }
  assert.deepEqual(messages(), [1, 2]);
  await clock.advance(client.options.holdMs / 2);
  ws.frame(msg(3));
  assert.deepEqual(messages(), [1, 2, 3, 4, 5]);
  await clock.advance(client.options.holdMs * 3);
  assert.equal(events.some(([t]) => t === "gap"), false);
  assert.equal(ws.sent.length, 1); // no re-subscribe was needed
  client.close();
});

test("a hole that does not fill: re-subscribe with since, then a gap, then the rest in order", async () => {
  const { client, clock, sockets, messages, events } = await connected({ client: { pingIntervalMs: 0 } });
  const ws = sockets[0];
  ws.frame({ type: "subscribed", channel: "room", seq: 0 });
  for (const seq of [1, 2, 5, 4]) {
    ws.frame(msg(seq));
  }
  await clock.advance(client.options.holdMs);
  assert.deepEqual(ws.sent.at(-1), { action: "subscribe", channel: "room", since: 2 });
  assert.equal(events.some(([t]) => t === "gap"), false, "no gap before the re-subscribe is answered");
  // The server replays nothing for 3 (lost) and confirms: the hole will not fill.
  ws.frame({ type: "subscribed", channel: "room", seq: 5 });
  const [gap] = events.filter(([t]) => t === "gap").map(([, d]) => d);
  assert.deepEqual(gap, { channel: "room", since: 2, oldest: 4, seq: 5, source: "client", reason: "not replayed" });
  assert.deepEqual(messages(), [1, 2, 4, 5]);
  // Without any answer, the second timeout reports the gap.
  ws.frame(msg(7));
  await clock.advance(client.options.holdMs);
  assert.deepEqual(ws.sent.at(-1), { action: "subscribe", channel: "room", since: 5 });
  await clock.advance(client.options.holdMs);
  assert.equal(events.filter(([t]) => t === "gap").at(-1)[1].reason, "timeout");
  assert.deepEqual(messages(), [1, 2, 4, 5, 7]);
  client.close();
});

test("the server's gap frame: event, then the replay from oldest is delivered", async () => {
  const { client, sockets, messages, events } = await connected({ client: { since: { room: 12 } } });
  const ws = sockets[0];
  assert.deepEqual(ws.sent, [{ action: "subscribe", channel: "room", since: 12 }]);
  ws.frame({ type: "gap", channel: "room", since: 12, oldest: 40, seq: 41 });
  ws.frame(msg(40));
  ws.frame(msg(41));
  ws.frame({ type: "subscribed", channel: "room", seq: 41 });
  assert.deepEqual(messages(), [40, 41]);
  const gaps = events.filter(([t]) => t === "gap").map(([, d]) => d);
  assert.deepEqual(gaps, [{ channel: "room", since: 12, oldest: 40, seq: 41, source: "server" }]);
  client.close();
});

test("after a drop every channel is re-subscribed with since = the last seq seen", async () => {
  const { client, clock, sockets, messages } = await connected();
  client.subscribe("other");
  const ws = sockets[0];
  ws.frame({ type: "subscribed", channel: "room", seq: 3 });
  ws.frame({ type: "subscribed", channel: "other", seq: 0 });
  ws.frame(msg(4));
  ws.frame(msg(1, "other"));
  ws.drop(1000, "");
  await clock.advance(1000);
  assert.equal(sockets.length, 2);
  const next = sockets[1];
  assert.equal(next.url.searchParams.get("ws_token"), "tok2"); // tokens are single use
  next.open();
  assert.deepEqual(next.sent, [
    { action: "subscribe", channel: "room", since: 4 },
    { action: "subscribe", channel: "other", since: 1 },
  ]);
  for (const frame of [msg(5), msg(4), msg(6), msg(2, "other")]) {
    next.frame(frame); // replay (with a duplicate) then live
  }
  assert.deepEqual(messages(), [4, 1, 5, 6, 2]);
  client.unsubscribe("other");
  assert.deepEqual(next.sent.at(-1), { action: "unsubscribe", channel: "other" });
  next.frame(msg(3, "other"));
  assert.deepEqual(messages(), [4, 1, 5, 6, 2]);
  client.close();
});

test("rotation ahead of the maximum age: new socket first, resume, then close the old", async () => {
  const maxAgeMs = 8000;
  const { client, clock, sockets, messages, events } = await connected({ client: { maxAgeMs } });
  const old = sockets[0];
  old.frame({ type: "subscribed", channel: "room", seq: 0 });
  for (const seq of [1, 2, 3]) {
    old.frame(msg(seq));
  }
  await clock.advance(maxAgeMs);
  assert.equal(sockets.length, 2, "the new socket opens while the old one is still open");
  const fresh = sockets[1];
  assert.equal(old.readyState, 1);
  fresh.open();
  assert.deepEqual(fresh.sent, [{ action: "subscribe", channel: "room", since: 3 }]);
  // Overlap: both sockets carry 4 and 5; the new one replays 4 first.
  old.frame(msg(4));
  fresh.frame(msg(4));
  old.frame(msg(5));
  fresh.frame(msg(5));
  fresh.frame({ type: "subscribed", channel: "room", seq: 5 });
  await flush();
  assert.deepEqual(old.closedWith, { code: 1000, reason: "rotated" });
  fresh.frame(msg(6));
  assert.deepEqual(messages(), [1, 2, 3, 4, 5, 6]);
  assert.equal(client.stats.duplicates, 2);
  assert.equal(events.some(([t]) => t === "close"), false, "a rotation is not a close");
  const opens = events.filter(([t]) => t === "open").map(([, d]) => d);
  assert.deepEqual(opens.at(-1), { reconnect: true, rotated: true });
  assert.equal(client.send({ action: "send_message", message: "hi" }), true);
  assert.equal(fresh.sent.at(-1).action, "send_message");
  // The next rotation is scheduled from the new socket's opening.
  await clock.advance(maxAgeMs);
  assert.equal(sockets.length, 3);
  client.close();
});

test("the gateway closes the old socket at its cap while the new one is opening: no gap", async () => {
  const { client, clock, sockets, messages } = await connected({ client: { maxAgeMs: 5000 } });
  sockets[0].frame({ type: "subscribed", channel: "room", seq: 7 });
  await clock.advance(5000);
  sockets[0].drop(1001, "Going away");
  await clock.advance(0);
  assert.equal(sockets.length, 2, "no second reconnect beside the rotation");
  sockets[1].open();
  assert.deepEqual(sockets[1].sent, [{ action: "subscribe", channel: "room", since: 7 }]);
  sockets[1].frame(msg(8));
  sockets[1].frame({ type: "subscribed", channel: "room", seq: 8 });
  assert.deepEqual(messages(), [8]);
  assert.equal(client.state, "open");
  client.close();
});

test("ping: only when nothing was sent for pingIntervalMs", async () => {
  const { client, clock, sockets } = await connected({ client: { pingIntervalMs: 1000, maxAgeMs: 0 } });
  const ws = sockets[0];
  const pings = () => ws.sent.filter((m) => m.action === "ping").length;
  await clock.advance(999);
  assert.equal(pings(), 0);
  await clock.advance(1);
  assert.equal(pings(), 1);
  for (let i = 0; i < 5; i++) {
    await clock.advance(600);
    client.send({ action: "send_message", message: String(i) });
  }
  assert.equal(pings(), 1, "sending keeps the socket alive: no ping needed");
  await clock.advance(1000);
  assert.equal(pings(), 2);
  client.configure({ pingIntervalMs: 0 });
  await clock.advance(10000);
  assert.equal(pings(), 2);
  client.close();
});

test("presence and gateway error frames become events; connect() twice opens one socket", async () => {
  const { client, sockets, events } = await connected();
  client.connect();
  await flush();
  assert.equal(sockets.length, 1);
  assert.equal(client.presence("room"), true);
  assert.deepEqual(sockets[0].sent.at(-1), { action: "presence", channel: "room" });
  const snapshot = { type: "presence", channel: "room", event: "snapshot", users: [{ user: "a", connections: 2 }], count: 1 };
  sockets[0].frame(snapshot);
  sockets[0].frame({ message: "Internal server error", connectionId: "c=", requestId: "r" });
  sockets[0].frame({ type: "welcome", channel: "room" });
  assert.deepEqual(events.find(([t]) => t === "presence")[1], snapshot);
  assert.equal(events.find(([t]) => t === "error")[1].kind, "gateway");
  assert.deepEqual(events.find(([t]) => t === "frame")[1].frame, { type: "welcome", channel: "room" });
  client.close();
});

test("no subscribed for the first channel: the socket is useless, close 4000 and reconnect", async () => {
  const { client, clock, sockets, events } = await connected({ client: { maxAgeMs: 0 } });
  // The server lost this connection's session (e.g. marked gone by a post during $connect):
  // it never answers the subscribe.
  await clock.advance(client.options.subscribeTimeoutMs - 1);
  assert.equal(sockets[0].closedWith, null);
  await clock.advance(1);
  assert.deepEqual(sockets[0].closedWith, { code: 4000, reason: "no answer to subscribe" });
  const error = events.find(([t]) => t === "error")[1];
  assert.equal(error.kind, "subscribe");
  await clock.advance(1000);
  assert.equal(sockets.length, 2);
  sockets[1].open();
  sockets[1].frame({ type: "subscribed", channel: "room", seq: 4 });
  await clock.advance(client.options.subscribeTimeoutMs * 2);
  assert.equal(sockets[1].closedWith, null, "a confirmed socket stays");
  assert.equal(events.filter(([t]) => t === "close")[0][1].code, 4000);
  client.close();
});

test("a rotation whose new socket is never confirmed keeps the old socket", async () => {
  const { client, clock, sockets, messages } = await connected({ client: { maxAgeMs: 5000 } });
  sockets[0].frame({ type: "subscribed", channel: "room", seq: 1 });
  await clock.advance(5000);
  sockets[1].open();
  await clock.advance(client.options.subscribeTimeoutMs);
  assert.deepEqual(sockets[1].closedWith, { code: 4000, reason: "no answer to subscribe" });
  assert.equal(sockets[0].readyState, 1, "the old socket stays in use");
  sockets[0].frame(msg(2));
  assert.deepEqual(messages(), [2]);
  assert.equal(client.send({ action: "x" }), true);
  assert.equal(sockets[0].sent.at(-1).action, "x");
  // The rotation is tried again later, on a third socket.
  await clock.advance(client.options.maxDelayMs);
  assert.equal(sockets.length, 3);
  client.close();
});

test("subscribe and unsubscribe during a rotation reach both sockets", async () => {
  const { client, clock, sockets, messages } = await connected({ client: { maxAgeMs: 5000 } });
  sockets[0].frame({ type: "subscribed", channel: "room", seq: 0 });
  await clock.advance(5000);
  sockets[1].open();
  client.subscribe("news");
  client.unsubscribe("room");
  for (const ws of sockets) {
    assert.deepEqual(ws.sent.slice(-2), [
      { action: "subscribe", channel: "news" },
      { action: "unsubscribe", channel: "room" },
    ]);
  }
  sockets[1].frame({ type: "subscribed", channel: "news", seq: 9 });
  await flush();
  assert.deepEqual(sockets[0].closedWith, { code: 1000, reason: "rotated" });
  sockets[1].frame(msg(10, "news"));
  sockets[1].frame(msg(1, "room"));
  assert.deepEqual(messages(), [10]);
  assert.deepEqual(client.channels, ["news"]);
  client.close();
});

test("after unsubscribing the first channel, the next socket names the next one on $connect", async () => {
  const { client, clock, sockets } = await connected({ client: { channels: ["room", "news"] } });
  sockets[0].frame({ type: "subscribed", channel: "room", seq: 0 });
  sockets[0].frame({ type: "subscribed", channel: "news", seq: 3 });
  client.unsubscribe("room");
  sockets[0].drop(1006, "");
  await clock.advance(1000);
  assert.equal(sockets[1].url.searchParams.get("channel"), "news");
  sockets[1].open();
  assert.deepEqual(sockets[1].sent, [{ action: "subscribe", channel: "news", since: 3 }]);
  client.close();
});
