import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { backoffDelay, BACKOFF_MAX_MS, Connection, socketUrl } from "../src/lib/connection";
import { parseParams } from "../src/lib/params";
import { previewText } from "../src/components/ApprovalDialog";

class FakeSocket {
  static all: FakeSocket[] = [];
  readyState = 0;
  binaryType = "blob";
  sent: unknown[] = [];
  bufferedAmount = 0;
  onopen: (() => void) | null = null;
  onclose: ((e: { code: number; reason: string }) => void) | null = null;
  onmessage: ((e: { data: unknown }) => void) | null = null;
  onerror: (() => void) | null = null;
  constructor(public url: string) {
    FakeSocket.all.push(this);
  }
  send(d: unknown) {
    this.sent.push(d);
  }
  close() {
    this.readyState = 3;
  }
  accept() {
    this.readyState = 1;
    this.onopen?.();
  }
  drop(code = 1006) {
    this.readyState = 3;
    this.onclose?.({ code, reason: "" });
  }
}

describe("backoff", () => {
  it("doubles from 0.5 s up to the cap, with ±20 % jitter", () => {
    const mid = () => 0.5;
    expect([1, 2, 3, 4, 5].map((a) => backoffDelay(a, mid))).toEqual([500, 1000, 2000, 4000, 8000]);
    expect(backoffDelay(30, mid)).toBe(BACKOFF_MAX_MS);
    expect(backoffDelay(1, () => 0)).toBe(400);
    expect(backoffDelay(1, () => 0.999999)).toBe(600);
  });

  it("builds the socket URL on the page's own origin", () => {
    expect(socketUrl({ protocol: "http:", host: "127.0.0.1:8765" }, "a b+/")).toBe("ws://127.0.0.1:8765/ui?secret=a%20b%2B%2F");
    expect(socketUrl({ protocol: "https:", host: "localhost:1" }, "s")).toBe("wss://localhost:1/ui?secret=s");
  });
});

describe("Connection", () => {
  beforeEach(() => {
    FakeSocket.all = [];
    vi.useFakeTimers();
  });
  afterEach(() => vi.useRealTimers());

  it("reconnects with growing delays and resets after a successful open", () => {
    const events: string[] = [];
    const c = new Connection(
      "ws://x/ui?secret=s",
      {
        onOpen: () => events.push("open"),
        onText: (t) => events.push(`text:${t}`),
        onBinary: (b) => events.push(`bin:${b.byteLength}`),
        onClose: ({ attempt }) => events.push(`close:${attempt}`),
        onConnecting: (a) => events.push(`connecting:${a}`),
      },
      FakeSocket as unknown as typeof WebSocket,
    );
    vi.spyOn(Math, "random").mockReturnValue(0.5);
    c.start();
    expect(FakeSocket.all).toHaveLength(1);
    expect(FakeSocket.all[0].binaryType).toBe("arraybuffer");
    FakeSocket.all[0].drop();
    vi.advanceTimersByTime(499);
    expect(FakeSocket.all).toHaveLength(1);
    vi.advanceTimersByTime(1);
    expect(FakeSocket.all).toHaveLength(2);
    FakeSocket.all[1].drop();
    vi.advanceTimersByTime(999);
    expect(FakeSocket.all).toHaveLength(2);
    vi.advanceTimersByTime(1);
    const s = FakeSocket.all[2];
    s.accept();
    expect(c.send({ type: "interrupt" })).toBe(true);
    expect(s.sent).toEqual(['{"type":"interrupt"}']);
    s.onmessage?.({ data: '{"type":"pong","id":"1"}' });
    s.onmessage?.({ data: new ArrayBuffer(4) });
    s.drop();
    vi.advanceTimersByTime(500); // attempt counter was reset by the open
    expect(FakeSocket.all).toHaveLength(4);
    expect(events).toEqual([
      "connecting:0",
      "close:1",
      "connecting:1",
      "close:2",
      "connecting:2",
      "open",
      'text:{"type":"pong","id":"1"}',
      "bin:4",
      "close:1",
      "connecting:1",
    ]);
    c.stop();
    vi.advanceTimersByTime(60_000);
    expect(FakeSocket.all).toHaveLength(4);
  });

  it("does not queue audio on a stalled socket", () => {
    const c = new Connection(
      "ws://x",
      { onOpen() {}, onText() {}, onBinary() {}, onClose() {}, onConnecting() {} },
      FakeSocket as unknown as typeof WebSocket,
    );
    c.start();
    expect(c.sendBinary(new ArrayBuffer(2))).toBe(false); // not open yet
    FakeSocket.all[0].accept();
    expect(c.sendBinary(new ArrayBuffer(2))).toBe(true);
    FakeSocket.all[0].bufferedAmount = 1 << 20;
    expect(c.sendBinary(new ArrayBuffer(2))).toBe(false);
    c.stop();
  });
});

describe("page parameters", () => {
  it("reads the secret and the test switches", () => {
    expect(parseParams("?secret=abc&rawmic=1&decoder=fallback&mode=ptt&theme=dark")).toEqual({
      urlSecret: "abc",
      rawMic: true,
      forceFallback: true,
      mode: "ptt",
      theme: "dark",
    });
    expect(parseParams("")).toEqual({ urlSecret: null, rawMic: false, forceFallback: false, mode: null, theme: null });
    expect(parseParams("?rawmic=0&mode=x").rawMic).toBe(false);
  });
});

describe("approval preview", () => {
  it("shows short content whole and cuts long content", () => {
    expect(previewText("a\nb")).toEqual({ text: "a\nb", more: null });
    const long = Array.from({ length: 100 }, (_, i) => `line ${i}`).join("\n");
    const p = previewText(long);
    expect(p.text.split("\n")).toHaveLength(40);
    expect(p.more).toBe("… 60 more lines");
    expect(previewText("x".repeat(5000)).more).toBe("… 1000 more characters");
  });
});
