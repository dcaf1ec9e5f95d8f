/**
 * Streaming band-limited resampler (windowed sinc, Kaiser window).
 *
 * Used in the capture worklet (context rate → 16 kHz: the kernel is the
 * anti-alias low-pass, cut at `rolloff` × the lower Nyquist) and in the
 * playback worklet when the output context does not run at 24 kHz.
 *
 * Pure and allocation-light so it runs inside an AudioWorklet and in tests.
 */

export interface ResamplerOptions {
  /** Zero crossings of the sinc on each side (kernel half-length in units of the cut-off period). */
  zeros?: number;
  /** Cut-off as a fraction of the lower of the two Nyquist frequencies. */
  rolloff?: number;
  /** Kaiser window β (≈8: ~80 dB stop-band). */
  beta?: number;
  /** Kernel table resolution: phases per input sample. */
  phases?: number;
}

function besselI0(x: number): number {
  let sum = 1;
  let term = 1;
  const q = (x * x) / 4;
  for (let k = 1; k < 50; k++) {
    term *= q / (k * k);
    sum += term;
    if (term < sum * 1e-12) break;
  }
  return sum;
}

export class Resampler {
  readonly inRate: number;
  readonly outRate: number;
  private readonly step: number; // input samples per output sample
  private readonly half: number; // kernel half-width, input samples
  private readonly phases: number;
  private readonly table: Float64Array; // kernel sampled every 1/phases input sample over [-half, half]
  private buf: Float32Array;
  private len = 0; // valid samples in buf
  private base: number; // absolute input index of buf[0]
  private t = 0; // absolute input position of the next output sample

  constructor(inRate: number, outRate: number, opts: ResamplerOptions = {}) {
    if (!(inRate > 0 && outRate > 0)) throw new Error("rates must be positive");
    this.inRate = inRate;
    this.outRate = outRate;
    this.step = inRate / outRate;
    const zeros = opts.zeros ?? 16;
    const rolloff = opts.rolloff ?? 0.9;
    const beta = opts.beta ?? 8;
    this.phases = opts.phases ?? 128;
    // Cut-off, in cycles per input sample ×2 (i.e. relative to the input Nyquist).
    const scale = Math.min(1, outRate / inRate) * rolloff;
    this.half = Math.ceil(zeros / scale);
    const n = 2 * this.half * this.phases + 1;
    this.table = new Float64Array(n + 1);
    const i0b = besselI0(beta);
    for (let i = 0; i < n; i++) {
      const tau = i / this.phases - this.half;
      const x = scale * tau;
      const sinc = x === 0 ? 1 : Math.sin(Math.PI * x) / (Math.PI * x);
      const r = tau / this.half;
      const w = Math.abs(r) >= 1 ? 0 : besselI0(beta * Math.sqrt(1 - r * r)) / i0b;
      this.table[i] = scale * sinc * w;
    }
    this.table[n] = 0;
    // Start with `half` samples of silence of history so output 0 is at input 0.
    this.buf = new Float32Array(Math.max(4096, 4 * this.half));
    this.len = this.half;
    this.base = -this.half;
  }

  /** Latency in input samples. */
  get delay(): number {
    return this.half;
  }

  private kernel(tau: number): number {
    const pos = (tau + this.half) * this.phases;
    if (pos <= 0 || pos >= this.table.length - 1) return 0;
    const i = Math.floor(pos);
    const f = pos - i;
    return this.table[i] + (this.table[i + 1] - this.table[i]) * f;
  }

  /** Feed input samples; returns the output samples now computable (may be empty). */
  process(input: Float32Array): Float32Array {
    this.append(input);
    const out: number[] = [];
    const end = this.base + this.len; // first absolute index not yet received
    while (Math.floor(this.t) + this.half < end) {
      out.push(this.sampleAt(this.t));
      this.t += this.step;
    }
    this.trim();
    return Float32Array.from(out);
  }

  /** Output samples for the remaining input, as if followed by silence. */
  flush(): Float32Array {
    return this.process(new Float32Array(this.half + 1));
  }

  private sampleAt(t: number): number {
    const i0 = Math.floor(t);
    const frac = t - i0;
    let acc = 0;
    const lo = i0 - this.half + 1;
    const hi = i0 + this.half;
    for (let j = lo; j <= hi; j++) {
      const k = j - this.base;
      if (k < 0 || k >= this.len) continue;
      acc += this.buf[k] * this.kernel(j - i0 - frac);
    }
    return acc;
  }

  private append(input: Float32Array): void {
    if (this.len + input.length > this.buf.length) {
      const next = new Float32Array(Math.max(this.buf.length * 2, this.len + input.length));
      next.set(this.buf.subarray(0, this.len));
      this.buf = next;
    }
    this.buf.set(input, this.len);
    this.len += input.length;
  }

  private trim(): void {
    const keepFrom = Math.floor(this.t) - this.half; // absolute
    const drop = keepFrom - this.base;
    if (drop > 0) {
      const d = Math.min(drop, this.len);
      this.buf.copyWithin(0, d, this.len);
      this.len -= d;
      this.base += d;
    }
  }
}
