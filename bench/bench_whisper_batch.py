"""Does batching Whisper decodes across sessions pay? (issue 11 §2). No assertions.

    uv run python bench/bench_whisper_batch.py [--model tiny|base] [--batch 4]
                                               [--rounds 3] [--threads 0]

K utterances (coding commands, espeak-ng, 1.5–3 s each, decoded the way a
session decodes them: the 10 s minimum encoder window) waiting at the same
time, decoded (a) one after another, as the inference queue did, and (b) as
one CTranslate2 batch (:meth:`WhisperSTT._decode_batch`). Prints per round
the wall time of each, the throughput ratio, the single-utterance latency
(one decode alone: the session that is not waiting behind anyone) and
whether every batched transcript equals its single decode. The policy keeps
batching only if (b) beats (a) clearly; the figures in the note come from a
loaded 2-core machine.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def utterances(k: int) -> list[np.ndarray]:
    from tests.speech import espeak_speech, trim
    from voco.audio.pcm import pcm16_to_float

    lines = [
        ln.split("|")[0].strip()
        for ln in (ROOT / "bench" / "stt_utterances.txt").read_text().splitlines()
        if ln.strip() and not ln.startswith("#")
    ]
    return [pcm16_to_float(trim(espeak_speech(t)).tobytes()) for t in lines[:k]]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default="tiny", choices=["tiny", "base"])
    p.add_argument("--batch", type=int, default=4)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--threads", type=int, default=0, help="CTranslate2 intra threads (0: auto)")
    args = p.parse_args()

    from voco.providers.whisper_stt import WhisperSTT

    stt = WhisperSTT(model=args.model, cpu_threads=args.threads)
    asyncio.run(stt.warmup())
    audio = utterances(args.batch)
    items = [(a, []) for a in audio]
    print(
        f"model {args.model}, {len(items)} utterances "
        f"({', '.join(f'{len(a) / 16000:.1f}' for a in audio)} s), window "
        f"{stt.window(max(len(a) for a in audio))} frames",
        flush=True,
    )
    singles_ms, seq_ms, batch_ms, seq_cpu, batch_cpu, same = [], [], [], [], [], True
    for r in range(args.rounds):
        t = time.perf_counter()
        one = stt._decode(audio[0])
        singles_ms.append((time.perf_counter() - t) * 1000)
        t, c = time.perf_counter(), time.process_time()
        seq = [stt._decode(a) for a in audio]
        seq_ms.append((time.perf_counter() - t) * 1000)
        seq_cpu.append((time.process_time() - c) * 1000)
        t, c = time.perf_counter(), time.process_time()
        bat = stt._decode_batch(items)
        batch_ms.append((time.perf_counter() - t) * 1000)
        batch_cpu.append((time.process_time() - c) * 1000)
        same = same and seq == bat and one == seq[0]
        print(
            f"round {r}: one alone {singles_ms[-1]:6.0f} ms; {len(items)} sequential "
            f"{seq_ms[-1]:6.0f} ms wall {seq_cpu[-1]:6.0f} ms CPU; one batch "
            f"{batch_ms[-1]:6.0f} ms wall {batch_cpu[-1]:6.0f} ms CPU",
            flush=True,
        )
    print(
        f"median: one alone {np.median(singles_ms):.0f} ms; sequential {np.median(seq_ms):.0f} ms "
        f"wall / {np.median(seq_cpu):.0f} ms CPU; batched {np.median(batch_ms):.0f} ms wall / "
        f"{np.median(batch_cpu):.0f} ms CPU -> throughput x"
        f"{np.median(seq_ms) / np.median(batch_ms):.2f} (wall), "
        f"x{np.median(seq_cpu) / np.median(batch_cpu):.2f} (CPU); "
        f"batched transcripts equal single: {same}",
        flush=True,
    )
    if not same:
        print(f"  single:  {seq}\n  batched: {bat}")
    asyncio.run(through_the_queue(stt, audio, args.rounds))


async def through_the_queue(stt: object, audio: list[np.ndarray], rounds: int) -> None:
    """K sessions' ``transcribe`` at once through the real inference queue, with
    batching (max_batch = K) and without (1): each job's latency and the CPU."""
    q = stt._queue  # type: ignore[attr-defined]
    for max_batch in (1, len(audio), 1, len(audio))[: 2 * max(1, rounds // 2) or 2]:
        q.max_batch = max_batch
        t0, c0 = time.perf_counter(), time.process_time()

        async def one(a: np.ndarray, t0: float = t0) -> float:
            await stt.transcribe(a)  # type: ignore[attr-defined]
            return (time.perf_counter() - t0) * 1000

        lat = await asyncio.gather(*(one(a) for a in audio))
        cpu = (time.process_time() - c0) * 1000
        print(
            f"queue, max_batch {max_batch}: {len(audio)} sessions' decodes done after "
            f"p50 {np.median(lat):.0f} / max {max(lat):.0f} ms; CPU {cpu:.0f} ms",
            flush=True,
        )


if __name__ == "__main__":
    main()
