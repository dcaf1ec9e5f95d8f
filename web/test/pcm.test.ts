import { describe, expect, it } from "vitest";
import {
  Chunker,
  FRAME_SAMPLES,
  floatToInt16,
  int16ToFloat,
  int16ToS16leBytes,
  rms,
  s16leBytesToFloat,
} from "../src/audio/pcm";

describe("PCM16 conversion", () => {
  it("maps the float range onto s16 with clamping and rounding", () => {
    const y = floatToInt16(new Float32Array([0, 1, -1, 0.5, -0.5, 2, -2, NaN, 1e-6]));
    expect(Array.from(y)).toEqual([0, 32767, -32768, 16384, -16384, 32767, -32768, 0, 0]);
  });

  it("round-trips within one quantisation step", () => {
    const x = new Float32Array(1000).map((_, i) => Math.sin(i / 10) * 0.9);
    const back = int16ToFloat(floatToInt16(x));
    for (let i = 0; i < x.length; i++) expect(Math.abs(back[i] - x[i])).toBeLessThan(2 / 32768);
  });

  it("writes little-endian bytes and reads them back", () => {
    const bytes = new Uint8Array(int16ToS16leBytes(new Int16Array([1, -2, 0x1234, -32768])));
    expect(Array.from(bytes)).toEqual([0x01, 0x00, 0xfe, 0xff, 0x34, 0x12, 0x00, 0x80]);
    const f = s16leBytesToFloat(bytes);
    expect(f[0]).toBeCloseTo(1 / 32768, 8);
    expect(f[3]).toBe(-1);
  });

  it("ignores a trailing odd byte", () => {
    expect(s16leBytesToFloat(new Uint8Array([0, 0x40, 7])).length).toBe(1);
  });

  it("chunks any pushes into 512-sample frames (1024 bytes = 32 ms at 16 kHz)", () => {
    const c = new Chunker();
    expect(FRAME_SAMPLES).toBe(512);
    const frames: Int16Array[] = [];
    let v = 0;
    for (const n of [100, 412, 1, 1023, 600, 0, 2]) {
      const block = new Int16Array(n).map(() => v++);
      frames.push(...c.push(block));
    }
    expect(frames.length).toBe(Math.floor(v / 512));
    frames.forEach((f, k) => {
      expect(f.length).toBe(512);
      expect(f[0]).toBe(k * 512);
      expect(f[511]).toBe(k * 512 + 511);
      expect(f.buffer.byteLength).toBe(1024); // transferable on its own
    });
    expect(c.pending).toBe(v % 512);
  });

  it("computes RMS", () => {
    expect(rms(new Float32Array([1, -1, 1, -1]))).toBe(1);
    expect(rms(new Float32Array(0))).toBe(0);
  });
});
