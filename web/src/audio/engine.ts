/**
 * Browser audio: microphone capture (AudioWorklet → 16 kHz PCM frames) and
 * reply playback (MP3 via WebCodecs, or PCM → AudioWorklet queue at 24 kHz).
 */
import captureUrl from "./capture.worklet.ts?worker&url";
import playbackUrl from "./playback.worklet.ts?worker&url";
import type { CaptureOut } from "./capture.worklet";
import type { PlaybackIn, PlaybackOut } from "./playback.worklet";
import { Mp3FrameSplitter, type Mp3Frame } from "./mp3";
import { OUTPUT_RATE, s16leBytesToFloat } from "./pcm";
import { Resampler } from "./resample";

export type MicState = "off" | "starting" | "on" | "denied" | "error";
export type DecoderKind = "webcodecs" | "decodeAudioData" | "pcm";

export interface AudioCallbacks {
  /** A 512-sample 16 kHz s16le frame from the microphone. */
  onFrame(pcm: ArrayBuffer): void;
  /** Playback of a response was halted or reached its end: what was heard. */
  onPlayed(rid: string, playedMs: number, why: "halted" | "ended"): void;
  onNotice(level: "error" | "warning" | "info", code: string, message: string): void;
  onChange(): void;
}

export interface ResponseDiag {
  id: string;
  encoding: string;
  decoder: DecoderKind | null;
  bytes: number;
  frames: number;
  decodedMs: number;
  playedMs: number;
  peakLevel: number;
  ended: boolean;
  halted: boolean;
  droppedBytes: number;
}

interface Decoder {
  kind: DecoderKind;
  feed(bytes: Uint8Array): void;
  /** All input given: emit everything left. */
  finish(): Promise<void>;
  close(): void;
}

type Sink = (samples: Float32Array, rate: number) => void;

class PcmDecoder implements Decoder {
  kind: DecoderKind = "pcm";
  private odd: number | null = null;
  constructor(
    private rate: number,
    private sink: Sink,
  ) {}
  feed(bytes: Uint8Array): void {
    let b = bytes;
    if (this.odd !== null) {
      const j = new Uint8Array(b.length + 1);
      j[0] = this.odd;
      j.set(b, 1);
      b = j;
      this.odd = null;
    }
    if (b.length % 2 === 1) {
      this.odd = b[b.length - 1];
      b = b.subarray(0, b.length - 1);
    }
    if (b.length) this.sink(s16leBytesToFloat(b), this.rate);
  }
  async finish(): Promise<void> {}
  close(): void {}
}

function audioDataToMono(data: AudioData): Float32Array {
  const n = data.numberOfFrames;
  const ch = data.numberOfChannels;
  const out = new Float32Array(n);
  const tmp = new Float32Array(n);
  for (let c = 0; c < ch; c++) {
    data.copyTo(tmp, { planeIndex: c, format: "f32-planar" });
    for (let i = 0; i < n; i++) out[i] += tmp[i] / ch;
  }
  return out;
}

class WebCodecsMp3Decoder implements Decoder {
  kind: DecoderKind = "webcodecs";
  private splitter = new Mp3FrameSplitter();
  private decoder: AudioDecoder;
  private ts = 0;
  private failed = false;
  constructor(
    private sink: Sink,
    private onFail: (err: unknown, pending: Mp3Frame[]) => void,
  ) {
    this.decoder = new AudioDecoder({
      output: (data) => {
        try {
          if (!this.failed) this.sink(audioDataToMono(data), data.sampleRate);
        } finally {
          data.close();
        }
      },
      error: (e) => this.fail(e),
    });
    this.decoder.configure({ codec: "mp3", sampleRate: OUTPUT_RATE, numberOfChannels: 1 });
  }
  private fail(e: unknown): void {
    if (this.failed) return;
    this.failed = true;
    this.onFail(e, []);
  }
  feed(bytes: Uint8Array): void {
    if (this.failed) return;
    for (const f of this.splitter.push(bytes)) this.decodeFrame(f);
  }
  private decodeFrame(f: Mp3Frame): void {
    const duration = Math.round((f.samples * 1e6) / f.sampleRate);
    try {
      this.decoder.decode(
        new EncodedAudioChunk({ type: "key", timestamp: this.ts, duration, data: f.data }),
      );
    } catch (e) {
      this.fail(e);
      return;
    }
    this.ts += duration;
  }
  async finish(): Promise<void> {
    if (this.failed) return;
    for (const f of this.splitter.flush()) this.decodeFrame(f);
    try {
      await this.decoder.flush();
    } catch (e) {
      this.fail(e);
    }
  }
  close(): void {
    this.failed = true;
    if (this.decoder.state !== "closed") this.decoder.close();
  }
}

/** Fallback without WebCodecs: decodeAudioData on batches of whole frames. */
class BatchMp3Decoder implements Decoder {
  kind: DecoderKind = "decodeAudioData";
  private splitter = new Mp3FrameSplitter();
  private batch: Mp3Frame[] = [];
  private chain: Promise<void> = Promise.resolve();
  private closed = false;
  constructor(
    private ctx: BaseAudioContext,
    private sink: Sink,
    private framesPerBatch = 10,
  ) {}
  feed(bytes: Uint8Array): void {
    this.batch.push(...this.splitter.push(bytes));
    if (this.batch.length >= this.framesPerBatch) this.decodeBatch();
  }
  private decodeBatch(): void {
    const frames = this.batch;
    this.batch = [];
    if (!frames.length) return;
    const size = frames.reduce((n, f) => n + f.data.length, 0);
    const buf = new Uint8Array(size);
    let o = 0;
    for (const f of frames) {
      buf.set(f.data, o);
      o += f.data.length;
    }
    const decoded = this.ctx.decodeAudioData(buf.buffer).catch(() => null);
    this.chain = this.chain.then(async () => {
      const ab = await decoded;
      if (!ab || this.closed) return;
      const mono = new Float32Array(ab.length);
      for (let c = 0; c < ab.numberOfChannels; c++) {
        const d = ab.getChannelData(c);
        for (let i = 0; i < d.length; i++) mono[i] += d[i] / ab.numberOfChannels;
      }
      this.sink(mono, ab.sampleRate);
    });
  }
  async finish(): Promise<void> {
    this.batch.push(...this.splitter.flush());
    this.decodeBatch();
    await this.chain;
  }
  close(): void {
    this.closed = true;
  }
}

interface Playing {
  rid: string;
  encoding: string;
  decoder: Decoder | null;
  resampler: Resampler | null;
  resamplerRate: number;
  halted: boolean;
  endPosted: boolean;
  diag: ResponseDiag;
}

export interface AudioOptions {
  /** Turn off echo cancellation, noise suppression and AGC (tests). */
  rawMic: boolean;
  /** Force the MP3 fallback decoder (tests). */
  forceFallback: boolean;
}

export class AudioEngine {
  micState: MicState = "off";
  inputLevel = 0;
  inputPeak = 0; // highest input level since the microphone started
  outputLevel = 0;
  playedMs = 0; // of the response playing now (or last played)
  queuedMs = 0;
  totalPlayedMs = 0;
  framesCaptured = 0;
  needsGesture = false;
  webCodecsOk: boolean;
  responses: ResponseDiag[] = [];
  halts: { rid: string; playedMs: number; at: number }[] = [];

  private playCtx: AudioContext | null = null;
  private playNode: AudioWorkletNode | null = null;
  private capCtx: AudioContext | null = null;
  private capNode: AudioWorkletNode | null = null;
  private stream: MediaStream | null = null;
  private current: Playing | null = null;
  private haltedIds = new Set<string>();
  private startingPlayback: Promise<void> | null = null;
  private lastPlayedRid: string | null = null;

  constructor(
    private cb: AudioCallbacks,
    private opts: AudioOptions,
  ) {
    this.webCodecsOk = typeof AudioDecoder !== "undefined" && !opts.forceFallback;
  }

  // ------------------------------------------------------------- playback

  async startPlayback(): Promise<void> {
    if (this.playCtx) return;
    if (this.startingPlayback) return this.startingPlayback;
    this.startingPlayback = (async () => {
      let ctx: AudioContext;
      try {
        ctx = new AudioContext({ sampleRate: OUTPUT_RATE, latencyHint: "interactive" });
      } catch {
        ctx = new AudioContext({ latencyHint: "interactive" }); // the worklet resamples
      }
      await ctx.audioWorklet.addModule(playbackUrl);
      const node = new AudioWorkletNode(ctx, "voco-playback", {
        numberOfInputs: 0,
        numberOfOutputs: 1,
        outputChannelCount: [1],
      });
      node.port.onmessage = (e: MessageEvent<PlaybackOut>) => this.onPlaybackMessage(e.data);
      node.connect(ctx.destination);
      this.playCtx = ctx;
      this.playNode = node;
      ctx.onstatechange = () => this.updateGesture();
      this.updateGesture();
      if (this.webCodecsOk) {
        try {
          const s = await AudioDecoder.isConfigSupported({
            codec: "mp3",
            sampleRate: OUTPUT_RATE,
            numberOfChannels: 1,
          });
          if (!s.supported) this.webCodecsOk = false;
        } catch {
          this.webCodecsOk = false;
        }
      }
    })();
    try {
      await this.startingPlayback;
    } finally {
      this.startingPlayback = null;
    }
  }

  private updateGesture(): void {
    const suspended = [this.playCtx, this.capCtx].some((c) => c !== null && c.state === "suspended");
    if (suspended !== this.needsGesture) {
      this.needsGesture = suspended;
      this.cb.onChange();
    }
  }

  /** Call from a user gesture: resumes suspended audio contexts. */
  async resume(): Promise<void> {
    await Promise.all(
      [this.playCtx, this.capCtx].map((c) => (c && c.state === "suspended" ? c.resume() : null)),
    );
    this.updateGesture();
  }

  private post(msg: PlaybackIn, transfer: Transferable[] = []): void {
    this.playNode?.port.postMessage(msg, transfer);
  }

  private onPlaybackMessage(msg: PlaybackOut): void {
    if (msg.type === "level") {
      this.outputLevel = msg.rms;
      this.queuedMs = msg.queuedMs;
      if (msg.rid) {
        this.playedMs = msg.playedMs;
        const d = this.diag(msg.rid);
        if (d) {
          this.totalPlayedMs += Math.max(0, msg.playedMs - d.playedMs);
          d.playedMs = msg.playedMs;
          d.peakLevel = Math.max(d.peakLevel, msg.rms);
        }
      }
      return;
    }
    const d = this.diag(msg.rid);
    if (d) {
      this.totalPlayedMs += Math.max(0, msg.playedMs - d.playedMs);
      d.playedMs = msg.playedMs;
    }
    this.playedMs = msg.playedMs;
    if (msg.type === "halted") {
      this.outputLevel = 0;
      this.halts.push({ rid: msg.rid, playedMs: msg.playedMs, at: Date.now() });
      if (this.halts.length > 50) this.halts.shift();
    }
    this.cb.onPlayed(msg.rid, msg.playedMs, msg.type);
  }

  private diag(rid: string): ResponseDiag | undefined {
    for (let i = this.responses.length - 1; i >= 0; i--)
      if (this.responses[i].id === rid) return this.responses[i];
    return undefined;
  }

  private makeDecoder(p: Playing): Decoder | null {
    const sink: Sink = (samples, rate) => this.play(p, samples, rate);
    if (p.encoding === "pcm_s16le") return new PcmDecoder(OUTPUT_RATE, sink);
    if (p.encoding !== "mp3") {
      this.cb.onNotice("warning", "audio_encoding", `Cannot play ${p.encoding} audio.`);
      return null;
    }
    if (this.webCodecsOk) {
      try {
        return new WebCodecsMp3Decoder(sink, (err) => {
          // Broken for this page: use the fallback for the rest of this reply and later ones.
          this.webCodecsOk = false;
          this.cb.onNotice(
            "warning",
            "decoder_fallback",
            `MP3 decoding with WebCodecs failed (${String(err)}); using the fallback decoder.`,
          );
          if (this.current === p && !p.halted) {
            p.decoder = new BatchMp3Decoder(this.playCtx!, sink);
            p.diag.decoder = p.decoder.kind;
          }
        });
      } catch {
        this.webCodecsOk = false;
      }
    }
    return this.playCtx ? new BatchMp3Decoder(this.playCtx, sink) : null;
  }

  private play(p: Playing, samples: Float32Array, rate: number): void {
    if (p.halted || this.haltedIds.has(p.rid) || samples.length === 0) return;
    let x = samples;
    if (rate !== OUTPUT_RATE) {
      if (!p.resampler || p.resamplerRate !== rate) {
        p.resampler = new Resampler(rate, OUTPUT_RATE);
        p.resamplerRate = rate;
      }
      x = p.resampler.process(samples);
    }
    p.diag.decodedMs += (x.length * 1000) / OUTPUT_RATE;
    this.post({ type: "push", rid: p.rid, samples: x }, [x.buffer]);
  }

  /** `audio.start`: the binary frames that follow belong to `rid`. */
  audioStart(rid: string, encoding: string): void {
    if (this.current && this.current.rid !== rid && !this.current.halted) {
      // A new response while the last one's tail is still decoding: let it finish.
      const prev = this.current;
      void (prev.decoder?.finish() ?? Promise.resolve()).then(() => this.postEnd(prev));
    }
    const diag: ResponseDiag = {
      id: rid,
      encoding,
      decoder: null,
      bytes: 0,
      frames: 0,
      decodedMs: 0,
      playedMs: 0,
      peakLevel: 0,
      ended: false,
      halted: this.haltedIds.has(rid),
      droppedBytes: 0,
    };
    this.responses.push(diag);
    if (this.responses.length > 50) this.responses.shift();
    const p: Playing = {
      rid,
      encoding,
      decoder: null,
      resampler: null,
      resamplerRate: OUTPUT_RATE,
      halted: this.haltedIds.has(rid),
      endPosted: false,
      diag,
    };
    this.current = p;
    if (!p.halted) {
      p.decoder = this.makeDecoder(p);
      diag.decoder = p.decoder?.kind ?? null;
    }
    this.lastPlayedRid = rid;
    this.cb.onChange();
  }

  /** A binary frame from the runtime: audio of the current response. */
  audioData(data: ArrayBuffer): void {
    const p = this.current;
    if (!p) return;
    p.diag.bytes += data.byteLength;
    p.diag.frames += 1;
    if (p.halted || !p.decoder) {
      p.diag.droppedBytes += data.byteLength;
      return;
    }
    p.decoder.feed(new Uint8Array(data));
  }

  /** `audio.end`: no more frames for `rid`. */
  audioEnd(rid: string): void {
    const p = this.current;
    const d = this.diag(rid);
    if (d) d.ended = true;
    if (!p || p.rid !== rid || p.halted) return;
    const dec = p.decoder;
    void (dec ? dec.finish() : Promise.resolve()).then(() => this.postEnd(p));
  }

  private postEnd(p: Playing): void {
    if (p.halted || p.endPosted) return;
    p.endPosted = true;
    this.post({ type: "end", rid: p.rid });
  }

  /** `halt_audio` (or the stop button): stop `rid` now, drop everything of it. */
  halt(rid: string): void {
    this.haltedIds.add(rid);
    if (this.haltedIds.size > 100) this.haltedIds.delete(this.haltedIds.values().next().value!);
    const d = this.diag(rid);
    if (d) d.halted = true;
    const p = this.current;
    if (p && p.rid === rid) {
      p.halted = true;
      p.decoder?.close();
      p.decoder = null;
    }
    if (this.playNode) this.post({ type: "halt", rid });
    else this.cb.onPlayed(rid, 0, "halted");
  }

  /**
   * `resume_audio`: a halt the engine judged false (a backchannel, a cough).
   * The halted audio was dropped; the engine sends it again from `fromMs`, as a
   * fresh stream (a new decoder), and `audio.played` goes on counting on the
   * reply's timeline from there.
   */
  resumeResponse(rid: string, encoding: string, fromMs: number): void {
    this.haltedIds.delete(rid);
    this.post({ type: "resume", rid, fromMs });
    this.audioStart(rid, encoding);
    const d = this.diag(rid);
    if (d) d.playedMs = fromMs;
  }

  get currentResponse(): string | null {
    return this.current && !this.current.halted ? this.current.rid : null;
  }

  get isPlaying(): boolean {
    return this.queuedMs > 0 || this.outputLevel > 0.0005;
  }

  get lastRid(): string | null {
    return this.lastPlayedRid;
  }

  get decoderKind(): DecoderKind | null {
    return this.current?.diag.decoder ?? (this.webCodecsOk ? "webcodecs" : "decodeAudioData");
  }

  // -------------------------------------------------------------- capture

  async startMic(): Promise<void> {
    if (this.micState === "on" || this.micState === "starting") return;
    this.micState = "starting";
    this.cb.onChange();
    const raw = this.opts.rawMic;
    try {
      this.stream = await navigator.mediaDevices.getUserMedia({
        audio: {
          echoCancellation: !raw,
          noiseSuppression: !raw,
          autoGainControl: !raw,
          channelCount: 1,
        },
      });
    } catch (e) {
      const denied = e instanceof DOMException && (e.name === "NotAllowedError" || e.name === "SecurityError");
      this.micState = denied ? "denied" : "error";
      this.cb.onNotice(
        "error",
        denied ? "mic_denied" : "mic_error",
        denied
          ? "Microphone access was denied. Allow it in the browser's site settings, or type below."
          : `The microphone could not be opened (${e instanceof Error ? e.message : String(e)}).`,
      );
      this.cb.onChange();
      return;
    }
    try {
      const ctx = new AudioContext({ latencyHint: "interactive" });
      await ctx.audioWorklet.addModule(captureUrl);
      const src = ctx.createMediaStreamSource(this.stream);
      const node = new AudioWorkletNode(ctx, "voco-capture", {
        numberOfInputs: 1,
        numberOfOutputs: 1,
        outputChannelCount: [1],
        channelCount: 1,
        channelCountMode: "explicit",
        channelInterpretation: "speakers",
      });
      node.port.onmessage = (e: MessageEvent<CaptureOut>) => {
        const m = e.data;
        if (m.type === "level") {
          this.inputLevel = m.rms;
          if (m.rms > this.inputPeak) this.inputPeak = m.rms;
        }
        else {
          this.framesCaptured += 1;
          this.cb.onFrame(m.pcm);
        }
      };
      // Keep the node pulled: route its (silent) output through a muted gain.
      const mute = ctx.createGain();
      mute.gain.value = 0;
      src.connect(node);
      node.connect(mute);
      mute.connect(ctx.destination);
      this.capCtx = ctx;
      this.capNode = node;
      ctx.onstatechange = () => this.updateGesture();
      this.micState = "on";
      for (const t of this.stream.getAudioTracks()) {
        t.onended = () => {
          this.micState = "error";
          this.cb.onNotice("error", "mic_ended", "The microphone stopped (unplugged?).");
          this.cb.onChange();
        };
      }
      this.updateGesture();
    } catch (e) {
      this.micState = "error";
      this.cb.onNotice("error", "mic_error", `Audio capture failed: ${String(e)}`);
    }
    this.cb.onChange();
  }

  stopMic(): void {
    this.stream?.getTracks().forEach((t) => t.stop());
    this.stream = null;
    this.capNode?.disconnect();
    this.capNode = null;
    void this.capCtx?.close();
    this.capCtx = null;
    this.micState = "off";
    this.inputLevel = 0;
    this.cb.onChange();
  }

  get micSettings(): MediaTrackSettings | null {
    return this.stream?.getAudioTracks()[0]?.getSettings() ?? null;
  }
}
