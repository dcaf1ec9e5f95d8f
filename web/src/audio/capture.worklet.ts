/**
 * Capture: microphone (context rate) → anti-alias low-pass + resample to
 * 16 kHz → PCM s16le → 512-sample frames posted to the page (transferred).
 * Also posts the input level (RMS of the raw input) ~20 times a second.
 */
import { FRAME_SAMPLES, INPUT_RATE, Chunker, floatToInt16, rms } from "./pcm";
import { Resampler } from "./resample";

export type CaptureOut =
  | { type: "frame"; pcm: ArrayBuffer }
  | { type: "level"; rms: number };

class CaptureProcessor extends AudioWorkletProcessor {
  private resampler = new Resampler(sampleRate, INPUT_RATE);
  private chunker = new Chunker(FRAME_SAMPLES);
  private levelAcc = 0;
  private levelN = 0;
  private readonly levelEvery = Math.round(sampleRate / 20);

  process(inputs: Float32Array[][]): boolean {
    const input = inputs[0];
    if (!input || input.length === 0 || input[0].length === 0) return true;
    let mono = input[0];
    if (input.length > 1) {
      mono = new Float32Array(input[0].length);
      for (const ch of input) for (let i = 0; i < ch.length; i++) mono[i] += ch[i] / input.length;
    }
    const r = rms(mono);
    this.levelAcc += r * r * mono.length;
    this.levelN += mono.length;
    if (this.levelN >= this.levelEvery) {
      this.port.postMessage({ type: "level", rms: Math.sqrt(this.levelAcc / this.levelN) } satisfies CaptureOut);
      this.levelAcc = 0;
      this.levelN = 0;
    }
    const out = this.resampler.process(mono);
    if (out.length) {
      for (const frame of this.chunker.push(floatToInt16(out))) {
        // Int16Array on a little-endian host (every browser platform) is s16le.
        const pcm = frame.buffer as ArrayBuffer;
        this.port.postMessage({ type: "frame", pcm } satisfies CaptureOut, [pcm]);
      }
    }
    return true;
  }
}

registerProcessor("voco-capture", CaptureProcessor);
