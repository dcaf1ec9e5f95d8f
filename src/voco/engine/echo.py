"""Own-voice gating: is this microphone frame only the assistant's own reply
coming back through the user's speakers? (sans-I/O, numpy, no clock.)

Without headphones or acoustic echo cancellation the reply returns to the
microphone some 50–400 ms late and ~20 dB down — still speech, so the VAD
would call it a barge-in. The engine knows exactly what it sent and where on
the mic's stream time it started playing, so instead of cancelling the echo
sample by sample (an adaptive filter per session per frame is too dear here)
it compares *energy envelopes*:

* the reference (TTS PCM, on the reply's timeline) and the mic are reduced to
  8 ms block energies; the reference is mapped onto mic stream time with the
  playback anchor the session gives (:meth:`EchoGate.play_from` at
  ``audio.start`` and at a resume, :meth:`EchoGate.stop` at a halt);
* every few frames a delay search (normalised cross-correlation of the
  envelopes over the last second, lags 0…480 ms) finds the echo path's
  delay, and the median mic/reference ratio at that lag its gain;
* a frame is echo when its energy is within ``margin_db`` of the expected echo
  (the reference at that lag, ±1 block, times the gain), or of a blind bound:
  the loudest reference anywhere in the lag range times the 95th percentile of
  mic/reference seen so far (0 dB until 400 ms of reply have been heard, so
  nothing quieter than the reply itself barges in during its first moments).

User speech over the echo adds energy the reference does not explain, so it
passes. The work is a few hundred multiply-adds per 32 ms frame plus one small
correlation every fourth frame, and only while a reply plays (``active``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt
from numpy.lib.stride_tricks import sliding_window_view

BLOCK_MS = 8
MIC_RATE = 16_000
_MIC_BLOCK = MIC_RATE * BLOCK_MS // 1000  # 128 samples
_FLOOR = 1e-9  # energies are of samples in [-1, 1]
UNDERRUN_MS = 40  # a piece this late means the client played silence meanwhile


@dataclass(frozen=True)
class EchoConfig:
    max_lag_ms: int = 480
    min_lag_ms: int = 0
    window_ms: int = 1000  # envelope history the delay search uses
    margin_db: float = 8.0  # mic above expected echo by more than this: the user
    min_ncc: float = 0.5  # a delay estimate weaker than this is not trusted
    search_every: int = 4  # frames between delay searches (128 ms)
    tail_ms: int = 600  # keep gating this long after the reference stops
    min_evidence_ms: int = 400  # voiced reply in the window before a delay is trusted


@dataclass
class _Segment:
    stream_block: int  # first mic block this mapping applies to
    timeline_block: int  # reference block played at that moment
    until: int | None = None  # stream block where playback stopped


@dataclass
class EchoGate:
    config: EchoConfig = field(default_factory=EchoConfig)
    lag_blocks: int | None = None  # the estimated echo delay
    gain: float = 1.0  # estimated echo energy / reference energy, at the delay
    blind_gain: float = 1.0  # mic / loudest reference in the lag range (delay unknown)
    ncc: float = 0.0
    _ref: npt.NDArray[np.float64] = field(default_factory=lambda: np.zeros(0))
    _segments: list[_Segment] = field(default_factory=list)
    _mic: npt.NDArray[np.float64] = field(default_factory=lambda: np.zeros(0))
    _heard: npt.NDArray[np.float64] = field(default_factory=lambda: np.zeros(0))
    _next_block: int = 0  # mic stream block the next frame starts at
    _anchor: tuple[float, int] | None = None  # (clock, timeline ms) of the last play_from
    _frames: int = 0

    def __post_init__(self) -> None:
        c = self.config
        self._hist = (c.window_ms + c.max_lag_ms - c.min_lag_ms) // BLOCK_MS + 8
        self._mic = np.full(self._hist, _FLOOR)
        self._heard = np.full(self._hist, _FLOOR)
        self._lag_range = np.arange(c.min_lag_ms // BLOCK_MS, c.max_lag_ms // BLOCK_MS + 1)

    # ------------------------------------------------------------ reference

    def reset(self) -> None:
        """A new reply: a new timeline (the delay estimate stays: same room)."""
        self._ref = np.zeros(0)
        self._segments.clear()

    def add_reference(self, pcm: bytes, rate: int, timeline_ms: int) -> None:
        """Reply PCM16 at ``rate`` that starts at ``timeline_ms`` of the reply."""
        x = np.frombuffer(pcm, dtype="<i2").astype(np.float64) / 32768.0
        if not len(x):
            return
        first = timeline_ms // BLOCK_MS
        idx = first + (np.arange(len(x)) * 1000 // rate) // BLOCK_MS
        blocks = np.bincount(idx - first, weights=x * x) / np.maximum(np.bincount(idx - first), 1)
        end = first + len(blocks)
        if end > len(self._ref):
            self._ref = np.concatenate([self._ref, np.zeros(end - len(self._ref))])
        self._ref[first:end] = np.maximum(self._ref[first:end], blocks)

    def play_from(self, stream_ms: int, timeline_ms: int, *, now: float | None = None) -> None:
        """From mic stream time ``stream_ms`` (clock ``now``, if known: see
        :meth:`piece_sent`) the reply plays from ``timeline_ms``."""
        self._anchor = None if now is None else (now, timeline_ms)
        self.stop(stream_ms)
        self._segments.append(_Segment(stream_ms // BLOCK_MS, timeline_ms // BLOCK_MS))
        del self._segments[:-4]

    def piece_sent(self, stream_ms: int, timeline_ms: int, now: float) -> None:
        """A piece of the reply starting at ``timeline_ms`` goes out at clock
        ``now``. If the client, playing continuously from the last anchor, was
        due to reach it more than ``UNDERRUN_MS`` ago, its buffer ran dry (a
        slow TTS, a loaded machine): it plays this piece on arrival, not where
        the anchor says — re-anchor there, or the echo lands outside the lag
        range and passes for a barge-in."""
        if self._anchor is None or not self._segments or self._segments[-1].until is not None:
            return
        at, t0 = self._anchor
        if (now - at) * 1000 - (timeline_ms - t0) > UNDERRUN_MS:
            self.play_from(stream_ms, timeline_ms, now=now)

    def stop(self, stream_ms: int) -> None:
        if self._segments and self._segments[-1].until is None:
            self._segments[-1].until = stream_ms // BLOCK_MS

    @property
    def active(self) -> bool:
        """Whether frames need checking: a reply plays, or its echo may still come."""
        if not self._segments:
            return False
        last = self._segments[-1]
        if last.until is None:
            end = last.stream_block + len(self._ref) - last.timeline_block
        else:
            end = last.until
        return self._next_block <= end + self.config.tail_ms // BLOCK_MS

    def _reference_at(self, stream_block: int) -> float:
        for seg in reversed(self._segments):
            if stream_block >= seg.stream_block:
                if seg.until is not None and stream_block >= seg.until:
                    return _FLOOR
                t = seg.timeline_block + stream_block - seg.stream_block
                return float(self._ref[t]) if 0 <= t < len(self._ref) else _FLOOR
        return _FLOOR

    # -------------------------------------------------------------- the mic

    def is_echo(self, frame: bytes, stream_ms: int) -> bool:
        """Feed one mic frame (PCM16 16 kHz) that ends at ``stream_ms``; True if
        its energy is explained by the reply's own echo."""
        x = np.frombuffer(frame, dtype="<i2").astype(np.float64) / 32768.0
        n = len(x) // _MIC_BLOCK
        if n == 0:
            return False
        mic = (x[: n * _MIC_BLOCK].reshape(n, _MIC_BLOCK) ** 2).mean(axis=1) + _FLOOR
        first = stream_ms // BLOCK_MS - n
        self._next_block = first + n
        heard = np.array([self._reference_at(first + i) for i in range(n)]) + _FLOOR
        self._mic = np.concatenate([self._mic[n:], mic])
        self._heard = np.concatenate([self._heard[n:], heard])
        self._frames += 1
        if self._frames % self.config.search_every == 0:
            self._search()
        expected = self._expected(n)
        margin = 10 ** (self.config.margin_db / 10)
        return float(mic.sum()) <= margin * expected

    def _lags(self) -> npt.NDArray[np.int64]:
        return self._lag_range

    def _expected(self, n: int) -> float:
        """Energy the echo alone would put in the last ``n`` mic blocks: the
        blind bound (the loudest reference in the lag range, at the blind gain)
        until the delay is known; then the reference at that delay, but never
        below the blind bound 6 dB down — so a delay estimate that jumps in a
        pause of the reply cannot open the gate wide."""
        h = self._heard
        lags = self._lags()
        lo, hi = len(h) - n - int(lags.max()), len(h) - int(lags.min())
        blind = float(h[max(0, lo) : hi].max()) * n * self.blind_gain
        if self.lag_blocks is None or self.ncc < self.config.min_ncc:
            return blind
        total = 0.0
        for i in range(n):
            k = len(h) - n + i - self.lag_blocks
            total += float(h[max(0, k - 1) : min(len(h), k + 2)].max())
        return max(blind / 4, total * self.gain)  # the blind bound, 6 dB down

    def _search(self) -> None:
        """Re-estimate the echo delay and gain from the envelopes (sqrt energy)."""
        c = self.config
        w = c.window_ms // BLOCK_MS
        mic = np.sqrt(self._mic[-w:])
        lags = self._lags()
        if float(self._heard.max()) < 1e-6:  # no reference yet: nothing to learn
            return
        # how loud the mic is against the loudest reference it could be echoing:
        # until this has evidence, anything up to 0 dB counts as echo
        span = len(lags)
        near = sliding_window_view(self._heard, span).max(axis=1)
        # near[j] covers heard[j : j + span]; mic block k pairs with j = k - max_lag
        ref_any = near[len(near) - w :] if len(near) >= w else near[:0]
        if len(ref_any) < w:
            return
        loud_any = ref_any > 0.1 * float(ref_any.max())
        if loud_any.sum() < self.config.min_evidence_ms // BLOCK_MS:
            return
        seen = max(float(np.percentile(self._mic[-w:][loud_any] / ref_any[loud_any], 95)), 1e-4)
        # falls at once, rises 3 dB per search: a person starting to speak must not
        # raise the bound before their first 64 ms have decided the barge-in
        self.blind_gain = seen if seen < self.blind_gain else min(seen, self.blind_gain * 2)
        h = np.sqrt(self._heard)
        starts = len(h) - lags - w
        ok = (starts >= 0) & (starts + w <= len(h))
        windows = sliding_window_view(h, w)[starts[ok]]
        r0 = windows - windows.mean(axis=1, keepdims=True)
        rn = np.sqrt((r0 * r0).sum(axis=1))
        m0 = mic - mic.mean()
        mn = float(np.sqrt((m0 * m0).sum()))
        if mn < 1e-12 or not len(rn):
            return
        ncc = (r0 @ m0) / (np.maximum(rn, 1e-12) * mn)
        i = int(np.argmax(ncc))
        best, best_ncc = int(lags[ok][i]), float(ncc[i])
        end = len(self._heard) - best
        ref = self._heard[end - w : end]
        loud = ref > 0.1 * float(ref.max())
        if loud.sum() < self.config.min_evidence_ms // BLOCK_MS:
            return  # too little reply in the window to trust a delay
        self.lag_blocks, self.ncc = best, best_ncc
        self.gain = float(np.median(self._mic[-w:][loud] / ref[loud]))
