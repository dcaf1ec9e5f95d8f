/**
 * Glue: one Connection, one AudioEngine, the reducer's store, and the
 * read-only test hook `window.__voco`.
 */
import { AudioEngine } from "@/audio/engine";
import { FRAME_SAMPLES } from "@/audio/pcm";
import { Connection, socketUrl } from "./connection";
import {
  HISTORY_PAGE,
  MAX_TEXT_INPUT,
  parseServerMessage,
  type ApproveMode,
  type ClientMessage,
  type ServerMessage,
} from "./protocol";
import { initialState, presence, reduce, type Action, type AppState } from "./state";

export type MicMode = "handsfree" | "ptt";

/** Silence sent after push-to-talk is released, so the engine's VAD sees the turn end. */
export const PTT_TAIL_FRAMES = 20; // 640 ms
const PING_EVERY_MS = 15_000;
const THREAD_KEY = "voco.thread";

function storedThread(): string | null {
  try {
    return sessionStorage.getItem(THREAD_KEY);
  } catch {
    return null;
  }
}

export interface ClientOptions {
  secret: string;
  rawMic: boolean;
  forceFallback: boolean;
  mode: MicMode;
}

export interface LocalState {
  mode: MicMode;
  pttHeld: boolean;
  micState: AudioEngine["micState"];
  needsGesture: boolean;
}

export class VocoClient {
  state: AppState = initialState();
  local: LocalState;
  readonly audio: AudioEngine;
  private conn: Connection;
  private listeners = new Set<() => void>();
  private tailFrames = 0;
  private framesSent = 0;
  private pings = new Map<string, number>();
  private pingTimer: ReturnType<typeof setInterval> | null = null;
  private log: { dir: "in" | "out"; type: string; at: number }[] = [];
  private played: { rid: string; playedMs: number; why: string }[] = [];
  /** The last typed turn sent, put back in the queue if the runtime says the engine dropped it. */
  private inflight: string | null = null;

  constructor(opts: ClientOptions) {
    this.local = { mode: opts.mode, pttHeld: false, micState: "off", needsGesture: false };
    this.audio = new AudioEngine(
      {
        onFrame: (pcm) => this.onMicFrame(pcm),
        onPlayed: (rid, playedMs, why) => {
          this.played.push({ rid, playedMs, why });
          if (this.played.length > 50) this.played.shift();
          this.send({ type: "audio.played", response_id: rid, played_ms: Math.round(playedMs) });
        },
        onNotice: (level, code, message) => this.dispatch({ kind: "notice", level, code, message }),
        onChange: () => this.syncLocal(),
      },
      { rawMic: opts.rawMic, forceFallback: opts.forceFallback },
    );
    // A reload resumes this tab's conversation: the thread id outlives the page.
    this.conn = new Connection(() => socketUrl(location, opts.secret, this.state.session?.thread_id ?? storedThread()), {
      onConnecting: (attempt) => this.dispatch({ kind: "connection", status: "connecting", attempt }),
      onOpen: () => {
        this.dispatch({ kind: "connection", status: "open" });
        this.ping();
      },
      onText: (text) => this.onText(text),
      onBinary: (data) => this.audio.audioData(data),
      onClose: ({ code, reason, attempt, retryAt }) =>
        this.dispatch({ kind: "connection", status: "closed", code, reason, attempt, retryAt }),
    });
  }

  // ---------------------------------------------------------------- store

  subscribe = (fn: () => void): (() => void) => {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  };

  getState = (): AppState => this.state;
  getLocal = (): LocalState => this.local;

  dispatch(action: Action): void {
    this.state = reduce(this.state, action);
    this.emit();
    this.flushOutbox();
  }

  /** Typed turns queued while the engine was away go out, in order, once it is back. */
  private flushOutbox(): void {
    const s = this.state;
    if (!s.outbox.length || s.connection.status !== "open" || s.runtime.engine !== "connected") return;
    // One at a time: a new text.input would cut the reply to the previous one.
    if (this.inflight !== null || s.assistant !== "listening" || s.approvals.length) return;
    const [first] = s.outbox;
    if (!this.conn.send({ type: "text.input", text: first.text })) return;
    this.trace("out", "text.input");
    this.inflight = first.text;
    this.dispatch({ kind: "unqueue", id: first.id });
  }

  private emit(): void {
    for (const fn of this.listeners) fn();
  }

  private syncLocal(): void {
    const a = this.audio;
    if (a.micState !== this.local.micState || a.needsGesture !== this.local.needsGesture) {
      this.local = { ...this.local, micState: a.micState, needsGesture: a.needsGesture };
      this.emit();
    }
  }

  private setLocal(patch: Partial<LocalState>): void {
    this.local = { ...this.local, ...patch };
    this.emit();
  }

  // ------------------------------------------------------------ lifecycle

  async start(): Promise<void> {
    this.installHook();
    this.conn.start();
    this.pingTimer = setInterval(() => this.ping(), PING_EVERY_MS);
    try {
      await this.audio.startPlayback();
    } catch (e) {
      this.dispatch({
        kind: "notice",
        level: "error",
        code: "audio_output",
        message: `Audio output could not start: ${String(e)}`,
      });
    }
    await this.audio.startMic();
    this.syncLocal();
  }

  stopAll(): void {
    if (this.pingTimer) clearInterval(this.pingTimer);
    this.conn.stop();
    this.audio.stopMic();
  }

  /** From a click: resume audio the browser kept suspended; retry the mic. */
  async enableAudio(): Promise<void> {
    await this.audio.startPlayback().catch(() => undefined);
    await this.audio.resume();
    if (this.audio.micState !== "on") await this.audio.startMic();
    this.syncLocal();
  }

  retryNow(): void {
    this.conn.retryNow();
  }

  // ------------------------------------------------------------ messaging

  send(msg: ClientMessage): boolean {
    const ok = this.conn.send(msg);
    if (ok) this.trace("out", msg.type);
    return ok;
  }

  private trace(dir: "in" | "out", type: string): void {
    this.log.push({ dir, type, at: Date.now() });
    if (this.log.length > 300) this.log.shift();
  }

  private onText(text: string): void {
    const msg = parseServerMessage(text);
    if (!msg) return; // not ours to act on; the contract lets us ignore it
    this.trace("in", msg.type);
    this.onAudioMessage(msg);
    if (msg.type === "pong") {
      const key = String(msg.id);
      const t0 = this.pings.get(key);
      if (t0 !== undefined) {
        this.pings.delete(key);
        this.dispatch({ kind: "rtt", ms: Math.round(performance.now() - t0) });
      }
      return;
    }
    if (msg.type === "session.ready") {
      try {
        sessionStorage.setItem(THREAD_KEY, msg.thread_id);
      } catch {
        /* storage disabled: a reload starts a new conversation */
      }
    }
    if (msg.type === "error" && msg.code === "engine_offline" && this.inflight !== null) {
      const text = this.inflight;
      this.inflight = null;
      this.dispatch({ kind: "queue", text });
      return;
    }
    if (msg.type === "transcript.final") this.inflight = null;
    if (msg.type === "turn.resumed") {
      // re-sent: the outbox waits for its transcript, as for any turn in flight
      if (msg.outcome === "resent") this.inflight = msg.text;
      else if (this.inflight === msg.text) this.inflight = null;
    }
    this.dispatch({ kind: "server", msg });
  }

  private onAudioMessage(msg: ServerMessage): void {
    switch (msg.type) {
      case "audio.start":
        this.audio.audioStart(msg.response_id, msg.encoding);
        break;
      case "audio.end":
        this.audio.audioEnd(msg.response_id);
        break;
      case "halt_audio":
        this.audio.halt(msg.response_id);
        break;
      case "resume_audio":
        this.audio.resumeResponse(msg.response_id, msg.encoding, msg.from_ms);
        break;
    }
  }

  private ping(): void {
    const id = `p${Date.now().toString(36)}`;
    this.pings.set(id, performance.now());
    if (this.pings.size > 10) this.pings.delete(this.pings.keys().next().value!);
    this.send({ type: "ping", id });
  }

  // ------------------------------------------------------------- actions

  /** Send a typed turn now, or queue it (shown as pending) while the engine is away. */
  sendText(text: string): boolean {
    const t = text.trim();
    if (!t || t.length > MAX_TEXT_INPUT) return false;
    const s = this.state;
    if (s.connection.badLink) return false;
    if (s.connection.status === "open" && s.runtime.engine === "connected" && !s.outbox.length) {
      if (this.send({ type: "text.input", text: t })) {
        this.inflight = t;
        return true;
      }
    }
    this.dispatch({ kind: "queue", text: t });
    return true;
  }

  cancelQueued(id: number): void {
    this.dispatch({ kind: "unqueue", id });
  }

  /** Older turns of this thread (the "earlier" button). */
  loadEarlier(): void {
    const before = this.state.history.nextBefore;
    if (!before || this.state.history.loading) return;
    if (this.send({ type: "thread.history", before, limit: HISTORY_PAGE })) {
      this.dispatch({ kind: "history_requested" });
    }
  }

  /** The settings panel: how risky actions are decided (the runtime validates it). */
  setApprove(mode: ApproveMode): void {
    if (mode === "ask" || mode === "deny") this.send({ type: "settings.update", approve: mode });
  }

  /** The stop button: interrupt, and silence the reply here at once. */
  interrupt(): void {
    this.send({ type: "interrupt" });
    const rid = this.audio.currentResponse;
    if (rid) this.audio.halt(rid);
  }

  decide(id: string, approve: boolean): void {
    this.send({ type: "approval.decision", id, approve });
    this.dispatch({ kind: "decided", id, approve });
  }

  restartSession(): void {
    this.send({ type: "session.restart" });
  }

  setMode(mode: MicMode): void {
    if (mode === this.local.mode) return;
    this.setLocal({ mode, pttHeld: false });
    try {
      localStorage.setItem("voco.mode", mode);
    } catch {
      /* private mode */
    }
  }

  pttDown(): void {
    if (this.local.mode !== "ptt" || this.local.pttHeld) return;
    // Holding the talk key means "my turn": stop the reply now.
    if (this.audio.currentResponse && this.audio.isPlaying) this.interrupt();
    this.tailFrames = 0;
    this.setLocal({ pttHeld: true });
    if (this.audio.micState !== "on") void this.enableAudio();
  }

  pttUp(): void {
    if (!this.local.pttHeld) return;
    this.tailFrames = PTT_TAIL_FRAMES;
    this.setLocal({ pttHeld: false });
  }

  private onMicFrame(pcm: ArrayBuffer): void {
    const { mode, pttHeld } = this.local;
    if (mode === "handsfree" || pttHeld) {
      if (this.conn.sendBinary(pcm)) this.framesSent += 1;
    } else if (this.tailFrames > 0) {
      this.tailFrames -= 1;
      if (this.conn.sendBinary(new ArrayBuffer(FRAME_SAMPLES * 2))) this.framesSent += 1;
    }
  }

  // ------------------------------------------------------------ test hook

  private installHook(): void {
    const self = this;
    const a = this.audio;
    const hook = {
      get state() {
        return presence(self.state);
      },
      get assistant() {
        return self.state.assistant;
      },
      get connection() {
        return self.state.connection.status;
      },
      get engine() {
        return self.state.runtime.engine;
      },
      get mode() {
        return self.local.mode;
      },
      get micState() {
        return a.micState;
      },
      get micSettings() {
        return a.micSettings ? { ...a.micSettings } : null;
      },
      get inputLevel() {
        return a.inputLevel;
      },
      get inputPeak() {
        return a.inputPeak;
      },
      get outputLevel() {
        return a.outputLevel;
      },
      get playedMs() {
        return a.playedMs;
      },
      get totalPlayedMs() {
        return a.totalPlayedMs;
      },
      get queuedMs() {
        return a.queuedMs;
      },
      get decoder() {
        return a.decoderKind;
      },
      get framesCaptured() {
        return a.framesCaptured;
      },
      get framesSent() {
        return self.framesSent;
      },
      get halts() {
        return self.state.halts;
      },
      get haltEvents() {
        return a.halts.map((h) => ({ ...h }));
      },
      get responses() {
        return a.responses.map((r) => ({ ...r }));
      },
      get played() {
        return self.played.map((p) => ({ ...p }));
      },
      get messages() {
        return self.log.map((m) => ({ ...m }));
      },
      get turns() {
        return self.state.turns.map((t) => ({
          turnId: t.turnId,
          userText: t.userText,
          replies: t.responseIds.map((id) => ({ ...self.state.replies[id] })),
          metrics: t.metrics ? { ...t.metrics } : null,
        }));
      },
      get activity() {
        return self.state.activity.map((r) => ({ ...r }));
      },
      get approvals() {
        return self.state.approvals.map((r) => r.id);
      },
      get outbox() {
        return self.state.outbox.map((q) => q.text);
      },
      get badLink() {
        return self.state.connection.badLink;
      },
      get history() {
        return { ...self.state.history };
      },
      get approve() {
        return self.state.runtime.approve;
      },
      get threadId() {
        return self.state.session?.thread_id ?? null;
      },
    };
    Object.defineProperty(window, "__voco", { value: Object.freeze(hook), configurable: false, writable: false });
  }
}
