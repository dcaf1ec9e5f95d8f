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
correlation every fourth frame, and only while a reply plays (``active``); the
correlation is skipped while the mic's last second is the room alone (no block
10 dB over the quietest), which is most of a reply when the user has headphones
or listens quietly (search 67 → 12 µs there).

Why the numpy below is written the way it is: this runs for every frame of
every session while its reply plays, so a search is a handful of O(window)
array operations — the sliding maximum by doubling, the correlation for all
lags in one ``np.correlate``, the window norms from running sums, order
statistics by ``np.partition`` — rather than a lags × window matrix and
``np.percentile``/``np.median`` (whose first call also imports ``numpy.ma``,
a ~100 ms stall of the whole engine on the first reply). Same estimates, ~10×
less CPU (issue 11).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

BLOCK_MS = 8
MIC_RATE = 16_000
_MIC_BLOCK = MIC_RATE * BLOCK_MS // 1000  # 128 samples
_FLOOR = 1e-9  # energies are of samples in [-1, 1]
_MIC_SCALE = 1.0 / (_MIC_BLOCK * 32768.0**2)  # Σ PCM16² of a block → mean energy
UNDERRUN_MS = 40  # a piece this late means the client played silence meanwhile
_FLAT = 10.0  # a mic window whose loudest block is under 10 dB over its quietest


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
    _ref_buf: npt.NDArray[np.float64] = field(default_factory=lambda: np.zeros(0))
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
        self._margin = 10 ** (c.margin_db / 10)

    # ------------------------------------------------------------ reference

    def reset(self) -> None:
        """A new reply: a new timeline (the delay estimate stays: same room)."""
        self._ref = self._ref_buf[:0]
        self._ref_buf[:] = 0.0
        self._segments.clear()

    def add_reference(self, pcm: bytes, rate: int, timeline_ms: int) -> None:
        """Reply PCM16 at ``rate`` that starts at ``timeline_ms`` of the reply."""
        blocks = _block_energies(np.frombuffer(pcm, dtype="<i2"), rate)
        if not len(blocks):
            return
        first = timeline_ms // BLOCK_MS
        end = first + len(blocks)
        if end > len(self._ref_buf):  # grown by doubling: pieces arrive ~25 per second
            grown = np.zeros(max(end, 2 * len(self._ref_buf)))
            grown[: len(self._ref)] = self._ref
            self._ref_buf = grown
        if end > len(self._ref):
            self._ref = self._ref_buf[:end]  # a view: the tail past it is still zeros
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

    def _reference_span(self, first: int, n: int) -> npt.NDArray[np.float64]:
        """:meth:`_reference_at` for blocks ``first … first + n - 1`` at once
        (the usual case: one segment covers them all)."""
        seg = self._segments[-1] if self._segments else None
        if seg is None or first < seg.stream_block:
            return np.array([self._reference_at(first + i) for i in range(n)])
        t0 = seg.timeline_block + first - seg.stream_block
        if t0 >= 0 and t0 + n <= len(self._ref) and (seg.until is None or first + n <= seg.until):
            return self._ref[t0 : t0 + n]  # all inside the reply, still playing
        t = t0 + np.arange(n)
        ok = (t >= 0) & (t < len(self._ref))
        if seg.until is not None:
            ok &= np.arange(first, first + n) < seg.until
        out = np.full(n, _FLOOR)
        out[ok] = self._ref[t[ok]]
        return out

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
        n = len(frame) // 2 // _MIC_BLOCK
        if n == 0:
            return False
        x = np.frombuffer(frame, dtype="<i2", count=n * _MIC_BLOCK).reshape(n, _MIC_BLOCK)
        x = x.astype(np.float64)
        mic = np.einsum("ij,ij->i", x, x) * _MIC_SCALE + _FLOOR
        first = stream_ms // BLOCK_MS - n
        self._next_block = first + n
        heard = self._reference_span(first, n) + _FLOOR
        self._mic[:-n] = self._mic[n:]  # the histories slide by n blocks
        self._mic[-n:] = mic
        self._heard[:-n] = self._heard[n:]
        self._heard[-n:] = heard
        self._frames += 1
        if self._frames % self.config.search_every == 0:
            self._search()
        return float(mic.sum()) <= self._margin * self._expected(n)

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
        # the reference at the delay, ±1 block, for each of the last n blocks
        k0 = len(h) - n - self.lag_blocks  # the first of the n blocks at the delay
        if k0 >= 1 and self.lag_blocks >= 1:  # ±1 block inside the history: slices
            s = h[k0 - 1 : k0 + n + 1]
            near = np.maximum(np.maximum(s[:-2], s[1:-1]), s[2:])
        else:
            k = k0 + np.arange(n)
            near = np.maximum(h[np.clip(k - 1, 0, len(h) - 1)], h[np.clip(k, 0, len(h) - 1)])
            near = np.maximum(near, h[np.clip(k + 1, 0, len(h) - 1)])
        total = float(near.sum())
        return max(blind / 4, total * self.gain)  # the blind bound, 6 dB down

    def _search(self) -> None:
        """Re-estimate the echo delay and gain from the envelopes (sqrt energy)."""
        c = self.config
        w = c.window_ms // BLOCK_MS
        lags = self._lags()
        if float(self._heard.max()) < 1e-6:  # no reference yet: nothing to learn
            return
        mic_e = self._mic[-w:]
        # how loud the mic is against the loudest reference it could be echoing:
        # until this has evidence, anything up to 0 dB counts as echo
        span = len(lags)
        near = _sliding_max(self._heard, span)
        # near[j] covers heard[j : j + span]; mic block k pairs with j = k - max_lag
        ref_any = near[len(near) - w :] if len(near) >= w else near[:0]
        if len(ref_any) < w:
            return
        loud_any = ref_any > 0.1 * float(ref_any.max())
        if int(np.count_nonzero(loud_any)) < self.config.min_evidence_ms // BLOCK_MS:
            return
        seen = max(_quantile(mic_e[loud_any] / ref_any[loud_any], 0.95), 1e-4)
        # falls at once, rises 3 dB per search: a person starting to speak must not
        # raise the bound before their first 64 ms have decided the barge-in
        self.blind_gain = seen if seen < self.blind_gain else min(seen, self.blind_gain * 2)
        live = mic_e[mic_e > 2 * _FLOOR]  # exact zeros (a mute, TTS gaps) are no room
        if not len(live) or float(live.max()) < _FLAT * float(live.min()):
            # nothing in the window rises 10 dB over its quietest block: the room
            # alone (an 8 ms block of stationary noise varies < 4 dB), which
            # correlates with no delay — and which the VAD gate keeps from the
            # model anyway. The correlation below would only find noise's
            # chance peaks; skipping it is most of a search's cost (issue 11).
            self.ncc = 0.0
            return
        h = np.sqrt(self._heard)
        starts = len(h) - lags - w
        ok = (starts >= 0) & (starts + w <= len(h))
        starts = starts[ok]
        mic = np.sqrt(mic_e)
        m0 = mic - mic.mean()
        mn = float(np.sqrt(m0 @ m0))
        if mn < 1e-12 or not len(starts):
            return
        # normalised cross-correlation at every lag: Σ window·m0 (m0 sums to 0,
        # so the window's mean drops out) over the window's own spread
        dots = np.correlate(h, m0, mode="valid")[starts]
        hc = h - h.mean()  # running sums of a centred copy: little cancellation
        s1 = np.concatenate([[0.0], np.cumsum(hc)])
        s2 = np.concatenate([[0.0], np.cumsum(hc * hc)])
        sum1 = s1[starts + w] - s1[starts]
        var = np.maximum(s2[starts + w] - s2[starts] - sum1 * sum1 / w, 0.0)
        rn = np.sqrt(var)
        ncc = dots / (np.maximum(rn, 1e-12) * mn)
        ncc[rn < 1e-12] = 0.0  # a flat window correlates with nothing
        i = int(np.argmax(ncc))
        best, best_ncc = int(lags[ok][i]), float(ncc[i])
        end = len(self._heard) - best
        ref = self._heard[end - w : end]
        loud = ref > 0.1 * float(ref.max())
        if int(np.count_nonzero(loud)) < self.config.min_evidence_ms // BLOCK_MS:
            return  # too little reply in the window to trust a delay
        self.lag_blocks, self.ncc = best, best_ncc
        self.gain = _quantile(mic_e[loud] / ref[loud], 0.5)


def _block_energies(x: npt.NDArray[np.int16], rate: int) -> npt.NDArray[np.float64]:
    """Mean energy (samples in [-1, 1]) of each ``BLOCK_MS`` block of ``x``,
    sample ``i`` in block ``i * 1000 // rate // BLOCK_MS``; the last may be partial.

    Why two ways: at the usual TTS rates (16, 24, 48 kHz) a block is a whole
    number of samples, so the blocks are rows of a reshape (one ``einsum``) —
    this runs for every piece of every reply, and the per-sample index and two
    ``bincount`` passes it replaces were ~5 % of a loaded engine (issue 11)."""
    n = len(x)
    per, exact = divmod(rate * BLOCK_MS, 1000)
    if exact or not n:  # e.g. 22.05 kHz: blocks of 176 or 177 samples
        f = x.astype(np.float64) / 32768.0
        idx = (np.arange(n) * 1000 // rate) // BLOCK_MS
        out: npt.NDArray[np.float64] = np.bincount(idx, weights=f * f) / np.maximum(
            np.bincount(idx), 1
        )
        return out
    full, rest = divmod(n, per)
    out = np.empty(full + (rest > 0))
    rows = x[: full * per].reshape(full, per).astype(np.float64)
    out[:full] = np.einsum("ij,ij->i", rows, rows)
    if rest:
        tail = x[full * per :].astype(np.float64)
        out[full] = float(tail @ tail) * per / rest  # a mean over the samples it has
    out *= 1.0 / (per * 32768.0**2)
    return out


def _sliding_max(a: npt.NDArray[np.float64], span: int) -> npt.NDArray[np.float64]:
    """``max(a[j : j + span])`` for every ``j`` (``len(a) - span + 1`` values), by
    doubling: maxima over windows of 1, 2, 4 … then two overlapping ones."""
    m, width = a, 1
    while width * 2 <= span:
        m = np.maximum(m[:-width], m[width:])
        width *= 2
    out: npt.NDArray[np.float64] = np.maximum(m[: len(a) - span + 1], m[span - width :])
    return out


def _quantile(x: npt.NDArray[np.float64], q: float) -> float:
    """``np.percentile(x, 100 q)`` (linear interpolation) by partition."""
    pos = q * (len(x) - 1)
    lo = int(pos)
    hi = min(lo + 1, len(x) - 1)
    part = np.partition(x, [lo, hi])
    a, b = float(part[lo]), float(part[hi])
    return a + (b - a) * (pos - lo)
