/** PCM helpers shared by the worklets, the page and the tests. */

export const INPUT_RATE = 16_000;
export const FRAME_SAMPLES = 512; // 32 ms at 16 kHz: the protocol's normal frame
export const OUTPUT_RATE = 24_000;

/** Float [-1, 1] → signed 16-bit (clamped, rounded; −1 → −32768, 1 → 32767). */
export function floatToInt16(input: Float32Array | number[]): Int16Array {
  const out = new Int16Array(input.length);
  for (let i = 0; i < input.length; i++) {
    const x = input[i];
    const c = x !== x ? 0 : x < -1 ? -1 : x > 1 ? 1 : x; // NaN → 0
    out[i] = c < 0 ? Math.round(c * 32768) : Math.round(c * 32767);
  }
  return out;
}

/** Signed 16-bit → float [-1, 1). */
export function int16ToFloat(input: Int16Array): Float32Array {
  const out = new Float32Array(input.length);
  for (let i = 0; i < input.length; i++) out[i] = input[i] / 32768;
  return out;
}

/** Little-endian s16 bytes → float samples (an odd trailing byte is ignored). */
export function s16leBytesToFloat(bytes: Uint8Array): Float32Array {
  const n = bytes.length >> 1;
  const view = new DataView(bytes.buffer, bytes.byteOffset, n * 2);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = view.getInt16(i * 2, true) / 32768;
  return out;
}

/** Int16 samples → little-endian bytes (independent of the host's endianness). */
export function int16ToS16leBytes(samples: Int16Array): ArrayBuffer {
  const buf = new ArrayBuffer(samples.length * 2);
  const view = new DataView(buf);
  for (let i = 0; i < samples.length; i++) view.setInt16(i * 2, samples[i], true);
  return buf;
}

/** Collects samples and hands out fixed-size frames. */
export class Chunker {
  private buf: Int16Array;
  private len = 0;
  constructor(readonly size: number = FRAME_SAMPLES) {
    this.buf = new Int16Array(size);
  }
  push(samples: Int16Array): Int16Array[] {
    const frames: Int16Array[] = [];
    let i = 0;
    while (i < samples.length) {
      const n = Math.min(this.size - this.len, samples.length - i);
      this.buf.set(samples.subarray(i, i + n), this.len);
      this.len += n;
      i += n;
      if (this.len === this.size) {
        frames.push(this.buf);
        this.buf = new Int16Array(this.size);
        this.len = 0;
      }
    }
    return frames;
  }
  /** Drop a partial frame. */
  reset(): void {
    this.len = 0;
  }
  get pending(): number {
    return this.len;
  }
}

/** Root mean square of a block. */
export function rms(x: Float32Array): number {
  if (x.length === 0) return 0;
  let s = 0;
  for (let i = 0; i < x.length; i++) s += x[i] * x[i];
  return Math.sqrt(s / x.length);
}
