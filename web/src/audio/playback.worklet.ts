/**
 * Playback: a queue of 24 kHz float chunks, each tagged with its response id.
 *
 * Messages in:  push {rid, samples}  ·  end {rid} (nothing more will come)
 *               halt {rid} (drop everything of rid now, and anything later)
 *               resume {rid, fromMs} (resume_audio: rid plays again, its timeline
 *               going on from fromMs; the engine sends that audio again)
 * Messages out: halted {rid, playedMs} · ended {rid, playedMs}
 *               level {rms, playedMs, rid, queuedMs} (~every 50 ms)
 * playedMs counts the samples of that response actually rendered, on the
 * response's own 24 kHz timeline.
 */
import { OUTPUT_RATE } from "./pcm";
import { Resampler } from "./resample";

export type PlaybackIn =
  | { type: "push"; rid: string; samples: Float32Array }
  | { type: "end"; rid: string }
  | { type: "halt"; rid: string }
  | { type: "resume"; rid: string; fromMs: number };

export type PlaybackOut =
  | { type: "halted"; rid: string; playedMs: number }
  | { type: "ended"; rid: string; playedMs: number }
  | { type: "level"; rms: number; rid: string | null; playedMs: number; queuedMs: number };

interface Item {
  rid: string;
  data: Float32Array; // at the context rate
  pos: number;
}

const ms = (samples: number) => Math.floor((samples * 1000) / OUTPUT_RATE);

class PlaybackProcessor extends AudioWorkletProcessor {
  private queue: Item[] = [];
  private played = new Map<string, number>(); // rid → 24 kHz samples rendered
  private ending = new Set<string>();
  private halted = new Set<string>();
  private current: string | null = null;
  private resampler: Resampler | null =
    sampleRate === OUTPUT_RATE ? null : new Resampler(OUTPUT_RATE, sampleRate);
  private ratio = OUTPUT_RATE / sampleRate;
  private levelAcc = 0;
  private levelN = 0;
  private readonly levelEvery = Math.round(sampleRate / 20);

  constructor() {
    super();
    this.port.onmessage = (e: MessageEvent<PlaybackIn>) => this.onMessage(e.data);
  }

  private onMessage(msg: PlaybackIn): void {
    if (msg.type === "push") {
      if (this.halted.has(msg.rid)) return;
      const data = this.resampler ? this.resampler.process(msg.samples) : msg.samples;
      if (!this.played.has(msg.rid)) this.played.set(msg.rid, 0);
      this.queue.push({ rid: msg.rid, data, pos: 0 });
      if (this.played.size > 64) {
        const oldest = this.played.keys().next().value;
        if (oldest !== undefined && oldest !== msg.rid) this.played.delete(oldest);
      }
    } else if (msg.type === "end") {
      this.ending.add(msg.rid);
      this.checkEnded();
    } else if (msg.type === "resume") {
      this.halted.delete(msg.rid);
      this.played.set(msg.rid, Math.round((msg.fromMs * OUTPUT_RATE) / 1000));
    } else if (msg.type === "halt") {
      this.halted.add(msg.rid);
      this.ending.delete(msg.rid);
      this.queue = this.queue.filter((it) => it.rid !== msg.rid);
      if (this.current === msg.rid) this.current = null;
      this.port.postMessage({
        type: "halted",
        rid: msg.rid,
        playedMs: ms(this.played.get(msg.rid) ?? 0),
      } satisfies PlaybackOut);
    }
  }

  private checkEnded(): void {
    for (const rid of this.ending) {
      if (!this.queue.some((it) => it.rid === rid)) {
        this.ending.delete(rid);
        this.port.postMessage({
          type: "ended",
          rid,
          playedMs: ms(this.played.get(rid) ?? 0),
        } satisfies PlaybackOut);
      }
    }
  }

  process(_inputs: Float32Array[][], outputs: Float32Array[][]): boolean {
    const out = outputs[0][0];
    let i = 0;
    let energy = 0;
    while (i < out.length && this.queue.length) {
      const it = this.queue[0];
      this.current = it.rid;
      const n = Math.min(out.length - i, it.data.length - it.pos);
      for (let k = 0; k < n; k++) {
        const s = it.data[it.pos + k];
        out[i + k] = s;
        energy += s * s;
      }
      it.pos += n;
      i += n;
      this.played.set(it.rid, (this.played.get(it.rid) ?? 0) + n * this.ratio);
      if (it.pos >= it.data.length) {
        this.queue.shift();
        if (this.ending.size) this.checkEnded();
      }
    }
    for (; i < out.length; i++) out[i] = 0;
    for (let c = 1; c < outputs[0].length; c++) outputs[0][c].set(out);
    this.levelAcc += energy;
    this.levelN += out.length;
    if (this.levelN >= this.levelEvery) {
      let queued = 0;
      for (const it of this.queue) queued += (it.data.length - it.pos) * this.ratio;
      const rid = this.queue.length ? this.queue[0].rid : this.current;
      this.port.postMessage({
        type: "level",
        rms: Math.sqrt(this.levelAcc / this.levelN),
        rid,
        playedMs: rid ? ms(this.played.get(rid) ?? 0) : 0,
        queuedMs: ms(queued),
      } satisfies PlaybackOut);
      this.levelAcc = 0;
      this.levelN = 0;
    }
    return true;
  }
}

registerProcessor("voco-playback", PlaybackProcessor);
