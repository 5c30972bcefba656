// TypeScript declarations of aws_ws_async/static/aws_ws_async/client.js (docs/client.md).

export interface ChannelsClientOptions {
  /** The gateway's WebSocket URL, e.g. "wss://abc123.execute-api.eu-west-1.amazonaws.com/prod". */
  url: string;
  /** The project's WebSocketTokenView URL (POST, same origin). Required unless getToken is given. */
  tokenUrl?: string;
  /** Returns a one-time connect token; replaces the POST to tokenUrl. */
  getToken?: () => Promise<string> | string;
  /** Channels to join; the first is also named on $connect (?channel=). */
  channels?: string[];
  /** The last seq already seen per channel (e.g. restored from storage): resume from there. */
  since?: Record<string, number>;
  /** The CSRF token; default: the csrfCookieName cookie. */
  csrfToken?: string;
  /** Default "csrftoken" (Django's CSRF_COOKIE_NAME). */
  csrfCookieName?: string;
  /** Default "X-CSRFToken" (Django's CSRF_HEADER_NAME as a header). */
  csrfHeaderName?: string;
  /** Query parameter of the first channel; default "channel". */
  channelParam?: string;
  /** Query parameter of the token; default "ws_token" (WebSocketView.token_query_param). */
  tokenParam?: string;
  /** Backoff: the first retry waits 0.5-1 x minDelayMs; default 500. */
  minDelayMs?: number;
  /** Backoff ceiling; default 30000. */
  maxDelayMs?: number;
  /** A socket open this long resets the backoff; default 10000. */
  healthyMs?: number;
  /** Rotate to a new socket after this age (0: never); default 2 h - 5 min. */
  maxAgeMs?: number;
  /** Send {"action": "ping"} when nothing was sent for this long (0: never); default 5 min. */
  pingIntervalMs?: number;
  /** How long an early frame waits for the hole before a re-subscribe, then a gap; default 3000. */
  holdMs?: number;
  /** A socket whose first channel gets no "subscribed" this long after opening is closed
   * (4000) and replaced; a rotation's new socket is dropped instead. Default 10000. */
  subscribeTimeoutMs?: number;
  /** Held frames per channel beyond which the hole is given up at once; default 1000. */
  maxHeld?: number;
  /** Test seams: a WebSocket class, fetch, a random source and a clock. */
  WebSocket?: { new (url: string): WebSocket };
  fetch?: typeof fetch;
  random?: () => number;
  clock?: {
    now(): number;
    setTimeout(fn: () => void, ms: number): unknown;
    clearTimeout(id: unknown): void;
  };
}

export type ClientState = "idle" | "connecting" | "open" | "waiting" | "closed";

export interface MessageDetail<T = unknown> {
  channel: string;
  /** null when the channel has no history (no order or dedupe is possible). */
  seq: number | null;
  data: T;
}

export interface OpenDetail {
  /** Not the first socket of this client. */
  reconnect: boolean;
  /** Opened ahead of the maximum age; the old socket was closed after it. */
  rotated: boolean;
}

export interface CloseDetail {
  code: number;
  reason: string;
  wasClean: boolean;
  /** Whether the socket had opened (false: refused handshake or unreachable gateway). */
  opened: boolean;
  willReconnect: boolean;
}

export interface GapDetail {
  channel: string;
  /** The last seq delivered before the gap. */
  since: number | null;
  /** The first seq delivered after it. */
  oldest: number;
  /** The newest seq known when the gap was reported. */
  seq: number;
  /** "server": history no longer retains what was missed; "client": a hole never filled. */
  source: "server" | "client";
  reason?: "not replayed" | "timeout" | "overflow";
}

export interface PresenceUser {
  user: string;
  connections: number;
}

export type PresenceDetail =
  | { type: "presence"; channel: string; event: "join" | "leave"; user: string; connections: number; count: number }
  | { type: "presence"; channel: string; event: "snapshot"; users: PresenceUser[]; count: number };

export interface ErrorDetail {
  kind: "token" | "unauthorized" | "unreachable" | "socket" | "gateway" | "subscribe";
  message: string;
  status?: number;
  /** true: the client stopped (e.g. 401/403 from the token URL: log in again). */
  fatal?: boolean;
  opened?: boolean;
  frame?: unknown;
}

export interface ChannelsClientEventMap {
  open: CustomEvent<OpenDetail>;
  message: CustomEvent<MessageDetail>;
  presence: CustomEvent<PresenceDetail>;
  close: CustomEvent<CloseDetail>;
  gap: CustomEvent<GapDetail>;
  error: CustomEvent<ErrorDetail>;
  subscribed: CustomEvent<{ channel: string; seq: number | null }>;
  unsubscribed: CustomEvent<{ channel: string }>;
  reconnecting: CustomEvent<{ delayMs: number; attempt: number }>;
  /** Any other JSON frame (e.g. an app's own "welcome"), or a frame that is not JSON (raw). */
  frame: CustomEvent<{ frame?: unknown; raw?: string }>;
}

export interface ClientStats {
  received: number;
  delivered: number;
  duplicates: number;
  held: number;
  gaps: number;
  reconnects: number;
  rotations: number;
  pings: number;
}

/** Equal-jitter backoff: a delay in [c / 2, c], c = min(maxDelayMs, minDelayMs * 2 ** attempt). */
export function backoffDelay(
  attempt: number,
  options: { minDelayMs: number; maxDelayMs: number },
  random?: () => number,
): number;

export class ChannelsClient extends EventTarget {
  constructor(options: ChannelsClientOptions);
  readonly options: Required<Omit<ChannelsClientOptions, "getToken" | "WebSocket" | "fetch" | "random" | "clock" | "csrfToken" | "tokenUrl" | "since" | "channels">> &
    ChannelsClientOptions;
  readonly state: ClientState;
  readonly channels: string[];
  readonly stats: ClientStats;
  connect(): void;
  close(code?: number, reason?: string): void;
  subscribe(channel: string, options?: { since?: number }): void;
  unsubscribe(channel: string): void;
  /** Asks for a presence snapshot (a "presence" event with event "snapshot"); false if not open. */
  presence(channel: string): boolean;
  /** Sends one JSON message on the open socket; false if none is open. */
  send(message: Record<string, unknown>): boolean;
  lastSeq(channel: string): number | null;
  configure(options: Partial<Pick<ChannelsClientOptions, "pingIntervalMs" | "maxAgeMs" | "holdMs" | "minDelayMs" | "maxDelayMs" | "healthyMs">>): void;
  on<K extends keyof ChannelsClientEventMap>(
    type: K,
    handler: (detail: ChannelsClientEventMap[K]["detail"]) => void,
  ): () => void;
  addEventListener<K extends keyof ChannelsClientEventMap>(
    type: K,
    listener: (event: ChannelsClientEventMap[K]) => void,
    options?: boolean | AddEventListenerOptions,
  ): void;
  addEventListener(type: string, listener: EventListenerOrEventListenerObject | null, options?: boolean | AddEventListenerOptions): void;
  removeEventListener<K extends keyof ChannelsClientEventMap>(
    type: K,
    listener: (event: ChannelsClientEventMap[K]) => void,
    options?: boolean | EventListenerOptions,
  ): void;
  removeEventListener(type: string, listener: EventListenerOrEventListenerObject | null, options?: boolean | EventListenerOptions): void;
}
