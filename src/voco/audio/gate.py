"""An energy gate in front of the VAD model: clearly silent frames skip it (sans-I/O).

Why: most of a voice session is silence, and Silero costs ~100 µs of CPU per
stream per 32 ms frame even batched: at hundreds of sessions per core that is
the engine's largest per-session cost. A frame's energy costs ~2 µs. A frame
far below any level the model reacts to can be scored "not speech" without
asking it.

Why it cannot move an onset: every mistake it can make is in the "ask the
model" direction except one, and that one is bounded.

* The frame is skipped only when its RMS level is below
  ``min(ceiling_db, floor_db + margin_db)``. The noise floor is the quietest
  frame of the last ``floor_window_frames`` heard outside speech, so in a
  quiet room the threshold sits just above the room's own noise and even a
  whisper opens the gate; ``ceiling_db`` caps it in a noisy room, so a frame
  at a level speech has (≥ -50 dBFS by default) always reaches the model.
* Why a window's minimum, outside speech, never under ``DIGITAL_SILENCE_DB``:
  exact zeros (a browser's first frames, a mute, TTS or noise suppression
  between words) are no room's noise. The floor used to fall at once to any
  quieter frame and rise 1.5 dB/s, so one zero frame put it at -120 dB and
  kept every frame of a -70 dB room "loud" for ~30 s: load-bench sessions
  had ~70 % of their room frames scored. Now an outlier leaves the window
  within a second, and the words' own gaps do not count.
* While the turn detector is in speech, and for ``hangover_frames`` after the
  model last saw a frame above the threshold, every frame goes to the model:
  the quiet gaps inside and after an utterance are scored by the model itself,
  so the end of a turn is decided exactly as without the gate. The hangover
  runs from the last loud frame, not from the turn's end: the turn's own
  end-of-speech silence is already scored, and restarting the count there
  scored ~16 room frames per utterance more (~17 % of the model's work in
  bench_load) that the detector, out of speech, reads only for an onset.
* The model is recurrent: skipping frames leaves its state where the last
  scored frame left it. When the gate opens, the last ``warmup_frames``
  skipped frames are run first (their scores discarded — they were already
  reported as silence), so the frame that opened the gate is scored with the
  same context and nearly the same state as without the gate.

Not bit-identical, and it cannot be: Silero's LSTM state never settles in
silence (it still moves after 400 frames of zeros), so even without a gate
an onset moves by a frame when the silence before it is half a second
longer. Measured on espeak-ng and Piper speech in digital silence and in
-90 … -60 dBFS noise (tests/audio/test_gate.py): 86 of 96 onsets and 87 of
96 ends on the same frame, no onset later by more than one frame (32 ms of
barge-in; 2 of 96 were), none earlier by more than two; every end within one
frame. The recogniser is not
affected either way: the listener's pre-roll keeps every frame, gated or not.

The gate never sees clocks or sockets: it is fed each frame and whether the
turn detector is in speech, and answers which frames the model must score.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass

import numpy as np

SILENT_DB = -120.0  # the level of an all-zero frame (log of 0 is not a number)
DIGITAL_SILENCE_DB = -100.0  # under any microphone's own noise: no signal, not a room


@dataclass(frozen=True)
class GateConfig:
    ceiling_db: float = -50.0  # never skip a frame louder than this (dBFS RMS)
    margin_db: float = 10.0  # skip only this far under the tracked noise floor + margin
    floor_window_frames: int = 32  # the floor: the quietest of this many (~1 s) outside speech
    hangover_frames: int = 16  # 512 ms of frames scored after the last loud one
    warmup_frames: int = 4  # skipped frames re-run through the model when it opens

    def __post_init__(self) -> None:
        if self.margin_db < 0:
            raise ValueError("margin_db must be >= 0")
        if self.floor_window_frames < 1:
            raise ValueError("floor_window_frames must be >= 1")
        if self.hangover_frames < 0 or self.warmup_frames < 0:
            raise ValueError("hangover_frames and warmup_frames must be >= 0")


def frame_db(frame: bytes) -> float:
    """RMS level of a PCM16 frame in dBFS (full scale 32768 → 0 dB)."""
    x = np.frombuffer(frame, dtype="<i2").astype(np.float32)
    if not len(x):
        return SILENT_DB
    power = float(np.dot(x, x)) / (len(x) * 32768.0 * 32768.0)
    return max(SILENT_DB, 10.0 * math.log10(power)) if power > 0 else SILENT_DB


class EnergyGate:
    """Per-stream gate state. :meth:`admit` says which frames the model scores."""

    __slots__ = ("_hang", "_levels", "_skipped", "config", "floor_db", "scored", "skipped")

    def __init__(self, config: GateConfig | None = None) -> None:
        self.config = cfg = config or GateConfig()
        self.floor_db = cfg.ceiling_db  # unknown room: the cap alone decides at first
        self._hang = cfg.hangover_frames  # the first frames are always scored
        self._levels: deque[float] = deque(maxlen=cfg.floor_window_frames)
        self._skipped: deque[bytes] = deque(maxlen=max(1, cfg.warmup_frames))
        self.skipped = 0
        self.scored = 0

    def threshold_db(self) -> float:
        cfg = self.config
        return min(cfg.ceiling_db, self.floor_db + cfg.margin_db)

    def admit(self, frame: bytes, in_speech: bool) -> list[bytes]:
        """The frames the model must score now, in order: ``[]`` when ``frame``
        is skipped (score it as silence), ``[frame]`` while the gate is open,
        or the skipped warm-up frames then ``frame`` when it opens. Only the
        last one's score belongs to ``frame``."""
        cfg = self.config
        db = frame_db(frame)
        loud = db >= self.threshold_db()
        if not in_speech:  # the room, not the words (nor their gaps)
            self._levels.append(db if db > DIGITAL_SILENCE_DB else DIGITAL_SILENCE_DB)
            self.floor_db = min(self._levels)
        if loud:
            self._hang = cfg.hangover_frames
        elif self._hang > 0:
            self._hang -= 1
        elif not in_speech:
            self.skipped += 1
            if cfg.warmup_frames:
                self._skipped.append(frame)
            return []
        self.scored += 1
        if not self._skipped:
            return [frame]
        out = [*self._skipped, frame]
        self._skipped.clear()
        return out

    def reset(self) -> None:
        self._hang = self.config.hangover_frames
        self._skipped.clear()
