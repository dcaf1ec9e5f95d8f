"""Turn detection from per-frame speech probabilities (sans-I/O).

Fed one VAD probability per 32 ms frame, it decides when the user starts and
stops speaking. It never sees sockets or clocks: frame ``i`` covers stream time
``[i*32, (i+1)*32)`` ms, so every event it emits carries exact stream times and
the same input always gives the same events.

Rules (protocol §7):
* speech is *confirmed* after ``start_frames`` consecutive frames at or above
  ``threshold`` (default 2 frames = the protocol's 64 ms of sustained speech);
  the onset is the start of the first of them, the confirmation time the end
  of the last — that confirmation is what triggers barge-in.
* speech ends after ``end_silence_ms`` of frames below ``neg_threshold``
  (hysteresis, so a dip in the middle of a word does not end the turn); the end
  time is the end of the last frame at or above ``neg_threshold``.
* a *pause* (:class:`SpeechPaused`, where the session transcribes
  speculatively) comes after ``early_pause_ms`` of silence — the first silent
  frame — once at least ``early_min_speech_ms`` of speech came since the
  utterance began or since the previous pause; otherwise after ``pause_ms``.
  Why: the speculative decode is the longest step between the last word and
  the reply, so it starts as soon as the voice stops; a pause that keeps
  flickering (a dip, a word, a dip) must not launch a decode per frame, so a
  new early pause needs new speech first, and the rest wait as long as before.
"""

from __future__ import annotations

from dataclasses import dataclass

from voco.audio.pcm import FRAME_MS


@dataclass(frozen=True)
class TurnConfig:
    threshold: float = 0.5
    neg_threshold: float = 0.35
    start_frames: int = 2
    end_silence_ms: int = 320
    preroll_ms: int = 256  # audio kept before the onset for the recogniser
    pause_ms: int = 128  # silence after which the transcript is computed speculatively
    early_pause_ms: int = 32  # ... or this soon, after enough new speech (module docstring)
    early_min_speech_ms: int = 320

    def __post_init__(self) -> None:
        if not 0.0 < self.neg_threshold <= self.threshold < 1.0:
            raise ValueError("need 0 < neg_threshold <= threshold < 1")
        if self.start_frames < 1 or self.end_silence_ms < FRAME_MS:
            raise ValueError("start_frames >= 1 and end_silence_ms >= one frame required")
        if not 0 < self.early_pause_ms <= self.pause_ms or self.early_min_speech_ms < 0:
            raise ValueError("need 0 < early_pause_ms <= pause_ms and early_min_speech_ms >= 0")


@dataclass(frozen=True)
class SpeechStarted:
    onset_ms: int  # stream time where the speech began
    confirmed_ms: int  # stream time when it was confirmed (barge-in decision point)
    onset_frame: int


@dataclass(frozen=True)
class SpeechEnded:
    end_ms: int  # stream time at the end of the last voiced frame
    decided_ms: int  # stream time when the silence rule fired


@dataclass(frozen=True)
class SpeechPaused:
    """``pause_ms`` of silence inside an utterance: likely, not yet certainly, its end.

    Lets the session start transcribing while the end-of-turn silence runs out.
    """

    end_ms: int


@dataclass(frozen=True)
class SpeechResumed:
    """Speech came back after a :class:`SpeechPaused`; the utterance goes on."""

    t_ms: int


TurnEvent = SpeechStarted | SpeechEnded | SpeechPaused | SpeechResumed


class TurnDetector:
    def __init__(self, config: TurnConfig | None = None) -> None:
        self.config = config or TurnConfig()
        self._frame = -1
        self._run = 0  # consecutive frames >= threshold while idle
        self._in_speech = False
        self._last_voiced_frame = -1
        self._silence_frames_needed = -(-self.config.end_silence_ms // FRAME_MS)
        self._pause_frames = max(1, -(-self.config.pause_ms // FRAME_MS))
        self._early_frames = max(1, -(-self.config.early_pause_ms // FRAME_MS))
        self._early_speech_frames = -(-self.config.early_min_speech_ms // FRAME_MS)
        self._fresh_from = 0  # first frame of speech no pause has covered yet
        self._paused = False
        self._end_frames = self._silence_frames_needed  # this pause's; see end_after

    @property
    def in_speech(self) -> bool:
        return self._in_speech

    @property
    def frame_index(self) -> int:
        """Index of the last frame pushed (-1 before any)."""
        return self._frame

    def push(self, prob: float) -> TurnEvent | None:
        """Feed the probability of the next frame; return the event it causes."""
        self._frame += 1
        i = self._frame
        cfg = self.config
        if not self._in_speech:
            self._run = self._run + 1 if prob >= cfg.threshold else 0
            if self._run >= cfg.start_frames:
                self._in_speech = True
                self._last_voiced_frame = i
                onset = i - cfg.start_frames + 1
                self._run = 0
                self._fresh_from = onset
                return SpeechStarted(onset * FRAME_MS, (i + 1) * FRAME_MS, onset)
            return None
        if prob >= cfg.neg_threshold:
            self._last_voiced_frame = i
            self._end_frames = self._silence_frames_needed
            if self._paused:
                self._paused = False
                return SpeechResumed(i * FRAME_MS)
            return None
        silent = i - self._last_voiced_frame
        if silent >= self._end_frames:
            return self._end(i)
        if not self._paused and silent >= self._pause_after():
            self._paused = True
            self._fresh_from = self._last_voiced_frame + 1
            return SpeechPaused((self._last_voiced_frame + 1) * FRAME_MS)
        return None

    def _pause_after(self) -> int:
        """Silent frames this pause needs before :class:`SpeechPaused` (docstring)."""
        fresh = self._last_voiced_frame + 1 - self._fresh_from
        return self._early_frames if fresh >= self._early_speech_frames else self._pause_frames

    def _end(self, i: int) -> SpeechEnded:
        self._in_speech = False
        self._paused = False
        self._run = 0
        self._end_frames = self._silence_frames_needed
        return SpeechEnded((self._last_voiced_frame + 1) * FRAME_MS, (i + 1) * FRAME_MS)

    @property
    def silent_ms(self) -> int:
        """Stream time since the last voiced frame (0 while voiced; a tentative
        barge-in's judge reads it: engine/backchannel.py)."""
        if self._last_voiced_frame < 0:
            return 0
        return (self._frame - self._last_voiced_frame) * FRAME_MS

    @property
    def paused(self) -> bool:
        """Inside an utterance, after a :class:`SpeechPaused`, before it resumes or ends."""
        return self._paused

    def end_after(self, silence_ms: int) -> SpeechEnded | None:
        """Make the current pause end the turn after ``silence_ms`` of silence
        instead of ``end_silence_ms`` (the caller judged the words: see
        :mod:`voco.engine.turn_end`). If that much silence has already passed,
        the turn ends now, at the last frame pushed, and the event is returned.
        Reset to ``end_silence_ms`` whenever speech comes back."""
        if not self._in_speech:
            return None
        self._end_frames = max(1, -(-silence_ms // FRAME_MS))
        if self._frame - self._last_voiced_frame >= self._end_frames:
            return self._end(self._frame)
        return None

    def reset_speech(self) -> None:
        """Forget an ongoing utterance (e.g. the session was reset)."""
        self._in_speech = False
        self._paused = False
        self._run = 0
        self._end_frames = self._silence_frames_needed
