import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { Mp3FrameSplitter, parseHeader } from "../src/audio/mp3";
import { rng } from "./helpers";

const FIXTURE = new Uint8Array(
  readFileSync(new URL("./fixtures/tone-440hz-24k-48kbps.mp3", import.meta.url)),
);

/** A frame header: version 3 = MPEG1, 2 = MPEG2, 0 = MPEG2.5; layer 1..3. */
function header(version: 0 | 2 | 3, layer: 1 | 2 | 3, bri: number, sri: number, pad = false, mono = true): Uint8Array {
  const b1 = 0xe0 | (version << 3) | ((4 - layer) << 1) | 1; // no CRC
  const b2 = (bri << 4) | (sri << 2) | (pad ? 2 : 0);
  const b3 = mono ? 0xc0 : 0x00;
  return new Uint8Array([0xff, b1, b2, b3]);
}

function frame(h: Uint8Array, fill = 0): Uint8Array {
  const p = parseHeader(h)!;
  const f = new Uint8Array(p.length).fill(fill);
  f.set(h);
  return f;
}

function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

describe("parseHeader", () => {
  it("MPEG-2 layer III, 48 kbps, 24 kHz (the engine's format): 144 bytes, 576 samples", () => {
    const h = parseHeader(header(2, 3, 6, 1))!;
    expect(h).toMatchObject({ version: 2, layer: 3, bitrateKbps: 48, sampleRate: 24000, channels: 1, length: 144, samples: 576 });
    expect(parseHeader(header(2, 3, 6, 1, true))!.length).toBe(145);
  });

  it("MPEG-1 layer III, 128 kbps, 44.1 kHz: 417 bytes (418 padded), 1152 samples", () => {
    expect(parseHeader(header(3, 3, 9, 0, false, false))).toMatchObject({
      bitrateKbps: 128,
      sampleRate: 44100,
      channels: 2,
      length: 417,
      samples: 1152,
    });
    expect(parseHeader(header(3, 3, 9, 0, true))!.length).toBe(418);
  });

  it("MPEG-2.5, layer I and layer II lengths", () => {
    expect(parseHeader(header(0, 3, 8, 2))).toMatchObject({ version: 2.5, sampleRate: 8000, bitrateKbps: 64, length: 576 });
    expect(parseHeader(header(3, 1, 12, 1))).toMatchObject({ layer: 1, bitrateKbps: 384, sampleRate: 48000, length: 384, samples: 384 });
    expect(parseHeader(header(3, 2, 10, 1))).toMatchObject({ layer: 2, bitrateKbps: 192, length: 576, samples: 1152 });
  });

  it("rejects what is not a header", () => {
    expect(parseHeader(new Uint8Array([0xff, 0x00, 0x64, 0xc4]))).toBeNull(); // no sync
    expect(parseHeader(new Uint8Array([0xfe, 0xf3, 0x64, 0xc4]))).toBeNull();
    expect(parseHeader(new Uint8Array([0xff, 0xeb, 0x64, 0xc4]))).toBeNull(); // reserved version
    expect(parseHeader(new Uint8Array([0xff, 0xf1, 0x64, 0xc4]))).toBeNull(); // reserved layer
    expect(parseHeader(header(2, 3, 15, 1))).toBeNull(); // bad bitrate
    expect(parseHeader(header(2, 3, 0, 1))).toBeNull(); // free format
    expect(parseHeader(header(2, 3, 6, 3))).toBeNull(); // reserved rate
    expect(parseHeader(new Uint8Array([0xff, 0xf3]))).toBeNull(); // too short
  });
});

describe("Mp3FrameSplitter", () => {
  it("splits a real MP3 (lameenc, 24 kHz, 48 kbps) into whole frames", () => {
    const s = new Mp3FrameSplitter();
    const frames = [...s.push(FIXTURE), ...s.flush()];
    expect(frames.length).toBe(FIXTURE.length / 144);
    expect(frames.every((f) => f.data[0] === 0xff && f.data.length === f.length)).toBe(true);
    expect(frames.every((f) => f.sampleRate === 24000 && f.samples === 576 && f.channels === 1)).toBe(true);
    expect(concat(...frames.map((f) => f.data))).toEqual(FIXTURE);
    expect(s.skippedBytes).toBe(0);
  });

  it("gives the same frames whatever the byte chunking", () => {
    const whole = new Mp3FrameSplitter().push(FIXTURE).concat(new Mp3FrameSplitter().flush());
    for (const seed of [1, 2, 3]) {
      const s = new Mp3FrameSplitter();
      const next = rng(seed);
      const got: Uint8Array[] = [];
      let i = 0;
      while (i < FIXTURE.length) {
        const n = 1 + Math.floor(next() * 200);
        got.push(...s.push(FIXTURE.subarray(i, i + n)).map((f) => f.data));
        i += n;
      }
      got.push(...s.flush().map((f) => f.data));
      expect(got.length).toBe(FIXTURE.length / 144);
      expect(concat(...got)).toEqual(FIXTURE);
      expect(whole.length).toBeGreaterThan(0);
    }
  });

  it("hands out a frame as soon as the next header confirms it, the last at flush", () => {
    const s = new Mp3FrameSplitter();
    const f1 = frame(header(2, 3, 6, 1), 0x11);
    const f2 = frame(header(2, 3, 6, 1, true), 0x22);
    expect(s.push(f1)).toEqual([]); // unconfirmed yet
    const got = s.push(f2.subarray(0, 10));
    expect(got.map((f) => f.length)).toEqual([144]);
    expect(s.push(f2.subarray(10))).toHaveLength(1); // locked: whole frame is enough
    expect(s.flush()).toEqual([]);
  });

  it("skips leading garbage, an ID3v2 tag, and false syncs", () => {
    const id3 = concat(new Uint8Array([0x49, 0x44, 0x33, 4, 0, 0, 0, 0, 0, 5]), new Uint8Array(5).fill(0xff));
    const junk = new Uint8Array([0x00, 0xff, 0xf3, 0x64, 0x00, 0x12]); // a header-looking run not followed by a frame
    const a = frame(header(2, 3, 6, 1), 0x33);
    const b = frame(header(2, 3, 6, 1), 0x44);
    const s = new Mp3FrameSplitter();
    const frames = [...s.push(concat(id3, junk, a, b)), ...s.flush()];
    expect(frames.map((f) => f.data[4])).toEqual([0x33, 0x44]);
    expect(s.skippedBytes).toBe(junk.length);
  });

  it("drops an incomplete tail at flush", () => {
    const s = new Mp3FrameSplitter();
    const a = frame(header(2, 3, 6, 1));
    expect([...s.push(concat(a, a.subarray(0, 50))), ...s.flush()]).toHaveLength(1);
  });
});
