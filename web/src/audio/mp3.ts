/**
 * MP3 frame splitting: the engine's reply audio arrives as a byte stream of
 * MPEG audio frames cut anywhere; WebCodecs wants whole frames per chunk.
 * The splitter parses each frame header (sync word, version, layer, bitrate,
 * sample rate, padding → frame length) and hands out whole frames.
 */

export interface FrameHeader {
  version: 1 | 2 | 2.5;
  layer: 1 | 2 | 3;
  bitrateKbps: number;
  sampleRate: number;
  padding: boolean;
  channels: 1 | 2;
  /** Bytes, header included. */
  length: number;
  /** PCM samples per channel this frame decodes to. */
  samples: number;
}

export interface Mp3Frame extends FrameHeader {
  data: Uint8Array;
}

const BITRATES: Record<string, number[]> = {
  // index 1..14; 0 = free format (unsupported), 15 = invalid
  "1-1": [32, 64, 96, 128, 160, 192, 224, 256, 288, 320, 352, 384, 416, 448],
  "1-2": [32, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320, 384],
  "1-3": [32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320],
  "2-1": [32, 48, 56, 64, 80, 96, 112, 128, 144, 160, 176, 192, 224, 256],
  "2-2": [8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160],
  "2-3": [8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160],
};

const RATES: Record<string, number[]> = {
  "1": [44100, 48000, 32000],
  "2": [22050, 24000, 16000],
  "2.5": [11025, 12000, 8000],
};

/** Parse the 4-byte header at `off`; null if it is not a valid frame header. */
export function parseHeader(b: Uint8Array, off = 0): FrameHeader | null {
  if (off + 4 > b.length) return null;
  const b1 = b[off + 1];
  const b2 = b[off + 2];
  const b3 = b[off + 3];
  if (b[off] !== 0xff || (b1 & 0xe0) !== 0xe0) return null;
  const v = (b1 >> 3) & 3;
  const l = (b1 >> 1) & 3;
  const bri = b2 >> 4;
  const sri = (b2 >> 2) & 3;
  if (v === 1 || l === 0 || bri === 0 || bri === 15 || sri === 3) return null;
  const version = v === 3 ? 1 : v === 2 ? 2 : 2.5;
  const layer = (4 - l) as 1 | 2 | 3;
  const table = BITRATES[`${version === 1 ? 1 : 2}-${layer}`];
  const bitrateKbps = table[bri - 1];
  const sampleRate = RATES[String(version)][sri];
  const padding = ((b2 >> 1) & 1) === 1;
  const channels = b3 >> 6 === 3 ? 1 : 2;
  const br = bitrateKbps * 1000;
  let length: number;
  let samples: number;
  if (layer === 1) {
    length = (Math.floor((12 * br) / sampleRate) + (padding ? 1 : 0)) * 4;
    samples = 384;
  } else if (layer === 2) {
    length = Math.floor((144 * br) / sampleRate) + (padding ? 1 : 0);
    samples = 1152;
  } else if (version === 1) {
    length = Math.floor((144 * br) / sampleRate) + (padding ? 1 : 0);
    samples = 1152;
  } else {
    length = Math.floor((72 * br) / sampleRate) + (padding ? 1 : 0);
    samples = 576;
  }
  return { version, layer, bitrateKbps, sampleRate, padding, channels, length, samples };
}

/** Size of an ID3v2 tag starting at `off`, or 0 (−1: not enough bytes to tell). */
function id3Size(b: Uint8Array, off: number): number {
  if (b.length - off < 3) return -1;
  if (b[off] !== 0x49 || b[off + 1] !== 0x44 || b[off + 2] !== 0x33) return 0; // "ID3"
  if (b.length - off < 10) return -1;
  const size =
    ((b[off + 6] & 0x7f) << 21) |
    ((b[off + 7] & 0x7f) << 14) |
    ((b[off + 8] & 0x7f) << 7) |
    (b[off + 9] & 0x7f);
  const footer = (b[off + 5] & 0x10) !== 0 ? 10 : 0;
  return 10 + size + footer;
}

/**
 * Streaming splitter. `push` any bytes; get back every whole frame now
 * complete. Garbage between frames is skipped; while not locked onto the
 * stream, a candidate frame is only accepted when the next header also
 * checks out (or at `flush`).
 */
export class Mp3FrameSplitter {
  private buf = new Uint8Array(0);
  private locked = false;
  skippedBytes = 0;

  push(bytes: Uint8Array): Mp3Frame[] {
    if (bytes.length) {
      const next = new Uint8Array(this.buf.length + bytes.length);
      next.set(this.buf);
      next.set(bytes, this.buf.length);
      this.buf = next;
    }
    return this.drain(false);
  }

  /** End of stream: hand out a last complete frame even if unconfirmed. */
  flush(): Mp3Frame[] {
    const frames = this.drain(true);
    this.skippedBytes += this.buf.length;
    this.buf = new Uint8Array(0);
    this.locked = false;
    return frames;
  }

  private drain(final: boolean): Mp3Frame[] {
    const frames: Mp3Frame[] = [];
    const b = this.buf;
    let off = 0;
    while (off < b.length) {
      const tag = id3Size(b, off);
      if (tag < 0 && !final) break;
      if (tag > 0) {
        if (off + tag > b.length) break;
        off += tag;
        continue;
      }
      if (b.length - off < 4) break;
      const h = parseHeader(b, off);
      if (h === null) {
        this.locked = false;
        off += 1;
        this.skippedBytes += 1;
        continue;
      }
      if (off + h.length > b.length) break; // wait for the rest of the frame
      if (!this.locked) {
        const nextOff = off + h.length;
        if (nextOff + 4 <= b.length) {
          const n = parseHeader(b, nextOff);
          if (n === null || n.sampleRate !== h.sampleRate || n.layer !== h.layer) {
            off += 1; // a false sync inside data
            this.skippedBytes += 1;
            continue;
          }
        } else if (!final) {
          break; // cannot confirm yet
        }
      }
      frames.push({ ...h, data: b.slice(off, off + h.length) });
      this.locked = true;
      off += h.length;
    }
    this.buf = b.slice(off);
    return frames;
  }
}
