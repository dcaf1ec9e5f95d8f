/**
 * The page's one WebSocket to the local runtime, reconnecting with
 * exponential backoff (with jitter) whenever it drops.
 */
import { CLOSE_BAD_SECRET, type ClientMessage } from "./protocol";

export const BACKOFF_BASE_MS = 500;
export const BACKOFF_MAX_MS = 15_000;

/** Delay before reconnect attempt `attempt` (1-based): 0.5 s, 1 s, 2 s … ≤ 15 s, ±20 % jitter. */
export function backoffDelay(attempt: number, random: () => number = Math.random): number {
  const base = Math.min(BACKOFF_MAX_MS, BACKOFF_BASE_MS * 2 ** Math.max(0, attempt - 1));
  return Math.round(base * (0.8 + 0.4 * random()));
}

/** ws://host/ui?secret=…[&thread=…] on the page's own origin; a reconnect names
 * the conversation it had, so the runtime resumes that thread. */
export function socketUrl(
  loc: { protocol: string; host: string },
  secret: string,
  threadId?: string | null,
): string {
  const scheme = loc.protocol === "https:" ? "wss:" : "ws:";
  const thread = threadId ? `&thread=${encodeURIComponent(threadId)}` : "";
  return `${scheme}//${loc.host}/ui?secret=${encodeURIComponent(secret)}${thread}`;
}

export interface ConnectionEvents {
  onOpen(): void;
  onText(text: string): void;
  onBinary(data: ArrayBuffer): void;
  onClose(info: { code: number; reason: string; attempt: number; retryAt: number | null }): void;
  onConnecting(attempt: number): void;
}

export class Connection {
  private ws: WebSocket | null = null;
  private attempt = 0;
  private timer: ReturnType<typeof setTimeout> | null = null;
  private stopped = false;

  constructor(
    private readonly url: string | (() => string),
    private readonly events: ConnectionEvents,
    private readonly Socket: typeof WebSocket = WebSocket,
  ) {}

  get open(): boolean {
    return this.ws !== null && this.ws.readyState === 1;
  }

  start(): void {
    this.stopped = false;
    this.connect();
  }

  /** Reconnect now (the "retry" button). */
  retryNow(): void {
    if (this.open) return;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.connect();
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.ws?.close(1000, "page closed");
    this.ws = null;
  }

  send(msg: ClientMessage): boolean {
    if (!this.open) return false;
    this.ws!.send(JSON.stringify(msg));
    return true;
  }

  sendBinary(data: ArrayBuffer): boolean {
    if (!this.open) return false;
    // Do not let a stalled socket queue unbounded audio (≈2 s of frames).
    if (this.ws!.bufferedAmount > 64 * 1024) return false;
    this.ws!.send(data);
    return true;
  }

  private connect(): void {
    if (this.stopped) return;
    if (this.ws && this.ws.readyState <= 1) return;
    this.events.onConnecting(this.attempt);
    const ws = new this.Socket(typeof this.url === "function" ? this.url() : this.url);
    ws.binaryType = "arraybuffer";
    this.ws = ws;
    ws.onopen = () => {
      this.attempt = 0;
      this.events.onOpen();
    };
    ws.onmessage = (e: MessageEvent) => {
      if (typeof e.data === "string") this.events.onText(e.data);
      else if (e.data instanceof ArrayBuffer) this.events.onBinary(e.data);
    };
    ws.onclose = (e: CloseEvent) => {
      if (this.ws !== ws) return;
      this.ws = null;
      if (this.stopped) return;
      if (e.code === CLOSE_BAD_SECRET) {
        // A stale link: retrying with the same secret cannot work.
        this.stopped = true;
        this.events.onClose({ code: e.code, reason: e.reason, attempt: this.attempt, retryAt: null });
        return;
      }
      this.attempt += 1;
      const delay = backoffDelay(this.attempt);
      const retryAt = Date.now() + delay;
      this.events.onClose({ code: e.code, reason: e.reason, attempt: this.attempt, retryAt });
      this.timer = setTimeout(() => {
        this.timer = null;
        this.connect();
      }, delay);
    };
    ws.onerror = () => {
      /* onclose follows and handles it */
    };
  }
}
