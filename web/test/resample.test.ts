import { describe, expect, it } from "vitest";
import { Resampler } from "../src/audio/resample";
import { amplitudeAt, dominantFrequency, rmsOf, rng, tone } from "./helpers";

function resampleAll(inRate: number, outRate: number, x: Float32Array, chunk = 128): Float32Array {
  const r = new Resampler(inRate, outRate);
  const parts: Float32Array[] = [];
  for (let i = 0; i < x.length; i += chunk) parts.push(r.process(x.subarray(i, i + chunk)));
  parts.push(r.flush());
  const n = parts.reduce((a, p) => a + p.length, 0);
  const out = new Float32Array(n);
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

describe("Resampler", () => {
  it("48 kHz → 16 kHz keeps a 1 kHz tone's frequency and level", () => {
    const y = resampleAll(48_000, 16_000, tone(1000, 48_000, 1));
    expect(Math.abs(y.length - 16_000)).toBeLessThan(40);
    const mid = y.subarray(2000, 14_000);
    expect(dominantFrequency(mid, 16_000, 500, 1500, 1)).toBe(1000);
    expect(amplitudeAt(mid, 1000, 16_000)).toBeCloseTo(0.5, 2);
  });

  it("does not alias a 12 kHz tone into the 16 kHz output (anti-alias low-pass)", () => {
    const y = resampleAll(48_000, 16_000, tone(12_000, 48_000, 1));
    const mid = y.subarray(2000, 14_000);
    // A naive decimator folds 12 kHz to 4 kHz at full level (0.5); we want ≥ 60 dB less.
    expect(amplitudeAt(mid, 4000, 16_000)).toBeLessThan(0.5e-3);
    expect(rmsOf(mid)).toBeLessThan(0.5e-3);
  });

  it("attenuates everything above the new Nyquist (9 kHz) and passes 6 kHz", () => {
    const high = resampleAll(48_000, 16_000, tone(9000, 48_000, 0.5)).subarray(1000, 7000);
    expect(rmsOf(high)).toBeLessThan(1e-3);
    const pass = resampleAll(48_000, 16_000, tone(6000, 48_000, 0.5)).subarray(1000, 7000);
    expect(amplitudeAt(pass, 6000, 16_000)).toBeGreaterThan(0.45);
  });

  it("44.1 kHz → 16 kHz (non-integer ratio) keeps a 3 kHz tone", () => {
    const y = resampleAll(44_100, 16_000, tone(3000, 44_100, 1));
    expect(Math.abs(y.length - 16_000)).toBeLessThan(40);
    const mid = y.subarray(2000, 14_000);
    expect(dominantFrequency(mid, 16_000, 2500, 3500, 1)).toBe(3000);
    expect(amplitudeAt(mid, 3000, 16_000)).toBeCloseTo(0.5, 2);
  });

  it("24 kHz → 48 kHz (playback on a 48 kHz device) keeps the tone without images", () => {
    const y = resampleAll(24_000, 48_000, tone(2000, 24_000, 0.5));
    const mid = y.subarray(2000, 20_000);
    expect(amplitudeAt(mid, 2000, 48_000)).toBeCloseTo(0.5, 2);
    expect(amplitudeAt(mid, 22_000, 48_000)).toBeLessThan(1e-3); // image of 2 kHz
  });

  it("gives the same output whatever the input chunking", () => {
    const x = tone(700, 48_000, 0.3);
    const whole = resampleAll(48_000, 16_000, x, x.length);
    const r = new Resampler(48_000, 16_000);
    const next = rng(7);
    const parts: number[] = [];
    let i = 0;
    while (i < x.length) {
      const n = 1 + Math.floor(next() * 300);
      parts.push(...r.process(x.subarray(i, i + n)));
      i += n;
    }
    parts.push(...r.flush());
    expect(parts.length).toBe(whole.length);
    for (let k = 0; k < parts.length; k++) expect(parts[k]).toBeCloseTo(whole[k], 6);
  });

  it("16 kHz → 16 kHz is (nearly) transparent", () => {
    const x = tone(1000, 16_000, 0.2);
    const y = resampleAll(16_000, 16_000, x);
    // delayed by `delay` samples and slightly low-passed; the 1 kHz tone passes.
    expect(amplitudeAt(y.subarray(500, 3000), 1000, 16_000)).toBeCloseTo(0.5, 2);
  });
});
