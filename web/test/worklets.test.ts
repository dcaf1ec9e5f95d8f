/**
 * The two AudioWorklet processors, run here with a stand-in for the
 * AudioWorkletGlobalScope: render quanta of 128 frames, messages in between.
 */
import { beforeAll, describe, expect, it } from "vitest";
import { amplitudeAt, tone } from "./helpers";

type Msg = Record<string, unknown> & { type: string };

class FakePort {
  sent: Msg[] = [];
  onmessage: ((e: { data: unknown }) => void) | null = null;
  postMessage(m: Msg) {
    this.sent.push(m);
  }
  deliver(m: unknown) {
    this.onmessage?.({ data: m });
  }
}

interface Processor {
  port: FakePort;
  process(inputs: Float32Array[][], outputs: Float32Array[][]): boolean;
}

const registry = new Map<string, new () => Processor>();
const g = globalThis as unknown as Record<string, unknown>;

beforeAll(async () => {
  g.AudioWorkletProcessor = class {
    port = new FakePort();
  };
  g.registerProcessor = (name: string, ctor: new () => Processor) => registry.set(name, ctor);
  g.sampleRate = 24_000;
  await import("../src/audio/playback.worklet");
  await import("../src/audio/capture.worklet");
});

function quantum(p: Processor): Float32Array {
  const out = [new Float32Array(128)];
  p.process([], [out]);
  return out[0];
}

function playback(rate = 24_000): Processor {
  g.sampleRate = rate;
  return new (registry.get("voco-playback")!)();
}

describe("playback worklet", () => {
  it("plays queued audio in order and reports played ms at the end of a response", () => {
    const p = playback();
    const x = tone(1000, 24_000, 0.1); // 2400 samples = 100 ms
    p.port.deliver({ type: "push", rid: "r1", samples: x.slice(0, 1000) });
    p.port.deliver({ type: "push", rid: "r1", samples: x.slice(1000) });
    p.port.deliver({ type: "end", rid: "r1" });
    const got: number[] = [];
    for (let i = 0; i < 20; i++) got.push(...quantum(p));
    expect(got.slice(0, 2400)).toEqual(Array.from(x));
    expect(got.slice(2400).every((v) => v === 0)).toBe(true); // silence after the queue
    const ended = p.port.sent.filter((m) => m.type === "ended");
    expect(ended).toEqual([{ type: "ended", rid: "r1", playedMs: 100 }]);
  });

  it("halt drops everything of that response at once, and anything that arrives later", () => {
    const p = playback();
    p.port.deliver({ type: "push", rid: "r1", samples: tone(500, 24_000, 1) });
    for (let i = 0; i < 75; i++) quantum(p); // 9600 samples = 400 ms played
    p.port.deliver({ type: "halt", rid: "r1" });
    const halted = p.port.sent.filter((m) => m.type === "halted");
    expect(halted).toEqual([{ type: "halted", rid: "r1", playedMs: 400 }]);
    // the very next render quantum is silent
    expect(quantum(p).every((v) => v === 0)).toBe(true);
    // late audio of the halted response is ignored; a new response plays
    p.port.deliver({ type: "push", rid: "r1", samples: tone(500, 24_000, 0.1) });
    expect(quantum(p).every((v) => v === 0)).toBe(true);
    p.port.deliver({ type: "push", rid: "r2", samples: new Float32Array(128).fill(0.25) });
    expect(quantum(p).every((v) => v === 0.25)).toBe(true);
  });

  it("posts the output level while playing and zero after", () => {
    const p = playback();
    p.port.deliver({ type: "push", rid: "r", samples: tone(1000, 24_000, 0.2, 0.5) });
    for (let i = 0; i < 20; i++) quantum(p);
    const levels = p.port.sent.filter((m) => m.type === "level") as unknown as { rms: number; playedMs: number }[];
    expect(levels.length).toBeGreaterThan(0);
    expect(levels[0].rms).toBeCloseTo(0.5 / Math.SQRT2, 2);
    for (let i = 0; i < 40; i++) quantum(p);
    const last = p.port.sent.filter((m) => m.type === "level").at(-1) as unknown as { rms: number; playedMs: number };
    expect(last.rms).toBe(0);
    expect(last.playedMs).toBe(200);
  });

  it("resamples 24 kHz replies on a 48 kHz device, counting ms on the reply's timeline", () => {
    const p = playback(48_000);
    p.port.deliver({ type: "push", rid: "r", samples: tone(1000, 24_000, 0.2) });
    p.port.deliver({ type: "end", rid: "r" });
    const got: number[] = [];
    for (let i = 0; i < 100; i++) got.push(...quantum(p));
    expect(amplitudeAt(got, 1000, 48_000, 1000, 8000)).toBeCloseTo(0.5, 1);
    const ended = p.port.sent.find((m) => m.type === "ended");
    expect(ended?.playedMs).toBeGreaterThanOrEqual(195);
    expect(ended?.playedMs).toBeLessThanOrEqual(200);
  });
});

describe("capture worklet", () => {
  it("turns 48 kHz microphone blocks into 512-sample 16 kHz s16le frames", () => {
    g.sampleRate = 48_000;
    const p = new (registry.get("voco-capture")!)();
    const x = tone(1000, 48_000, 1, 0.5);
    for (let i = 0; i < x.length; i += 128) p.process([[x.subarray(i, i + 128)]], [[new Float32Array(128)]]);
    const frames = p.port.sent.filter((m) => m.type === "frame").map((m) => new Int16Array(m.pcm as ArrayBuffer));
    expect(frames.length).toBe(31); // 16 000 samples (less the filter delay) / 512
    expect(frames.every((f) => f.length === 512)).toBe(true);
    const all = Array.from(frames.flatMap((f) => Array.from(f)), (v) => v / 32768);
    expect(amplitudeAt(all, 1000, 16_000, 1000, 15_000)).toBeCloseTo(0.5, 2);
    const levels = p.port.sent.filter((m) => m.type === "level") as unknown as { rms: number }[];
    expect(levels.length).toBeGreaterThanOrEqual(19);
    expect(levels[5].rms).toBeCloseTo(0.5 / Math.SQRT2, 2);
  });

  it("mixes a stereo input down to mono", () => {
    g.sampleRate = 16_000;
    const p = new (registry.get("voco-capture")!)();
    const l = new Float32Array(128).fill(0.5);
    const r = new Float32Array(128).fill(-0.5);
    for (let i = 0; i < 8; i++) p.process([[l, r]], [[new Float32Array(128)]]);
    const frame = p.port.sent.find((m) => m.type === "frame");
    expect(Array.from(new Int16Array(frame!.pcm as ArrayBuffer)).every((v) => v === 0)).toBe(true);
  });
});
