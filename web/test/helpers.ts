export function tone(freq: number, rate: number, seconds: number, amp = 0.5): Float32Array {
  const n = Math.round(rate * seconds);
  const x = new Float32Array(n);
  for (let i = 0; i < n; i++) x[i] = amp * Math.sin((2 * Math.PI * freq * i) / rate);
  return x;
}

export function rmsOf(x: ArrayLike<number>, from = 0, to = x.length): number {
  let s = 0;
  for (let i = from; i < to; i++) s += x[i] * x[i];
  return Math.sqrt(s / Math.max(1, to - from));
}

/** Power of frequency f in x (Goertzel), as an amplitude estimate. */
export function amplitudeAt(x: ArrayLike<number>, f: number, rate: number, from = 0, to = x.length): number {
  const n = to - from;
  const w = (2 * Math.PI * f) / rate;
  let re = 0;
  let im = 0;
  for (let i = 0; i < n; i++) {
    re += x[from + i] * Math.cos(w * i);
    im -= x[from + i] * Math.sin(w * i);
  }
  return (2 * Math.sqrt(re * re + im * im)) / n;
}

/** The strongest frequency (1 Hz grid search around a guess, then over a coarse band). */
export function dominantFrequency(x: ArrayLike<number>, rate: number, lo: number, hi: number, step = 5): number {
  let best = lo;
  let bestA = -1;
  for (let f = lo; f <= hi; f += step) {
    const a = amplitudeAt(x, f, rate);
    if (a > bestA) {
      bestA = a;
      best = f;
    }
  }
  return best;
}

/** Deterministic PRNG for chunk boundaries. */
export function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s * 1664525 + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}
