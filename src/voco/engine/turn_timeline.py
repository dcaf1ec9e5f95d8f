"""Where the time between the user's last word and the reply goes (sans-I/O).

Why: "last voiced sample → first reply audio" is one number at the client;
making it short needs each step of the engine's critical path measured on the
engine's own clock — when the silence was noticed, when the speculative decode
started and how long it took, when the turn was confirmed, when the
speculative reply started and had its first audio, when that audio was
released. The listener and the speculative reply fill one :class:`TurnTimeline`
per turn; :func:`breakdown` turns it into milliseconds after the last voiced
frame for the turn's observers (``bench/bench_turns.py``, not the wire).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class TurnTimeline:
    """Clock readings (seconds, the session's clock) of one turn's end."""

    voiced_end_at: float  # the end of the last voiced frame (see :meth:`at_pause`)
    decode_at: float | None = None  # the speculative decode was asked for
    decoded_at: float | None = None  # ... and its transcript arrived
    confirmed_at: float | None = None  # the turn's end was decided

    @classmethod
    def at_pause(cls, now: float, silent_ms: int) -> TurnTimeline:
        """A pause noticed ``silent_ms`` of stream after the last voiced frame:
        frames arrive in real time, so that frame ended ``silent_ms`` ago."""
        return cls(voiced_end_at=now - silent_ms / 1000, decode_at=now)


def _ms(t: float | None, since: float) -> int | None:
    return None if t is None else round((t - since) * 1000)


def breakdown(
    tl: TurnTimeline | None,
    *,
    spec_at: float | None = None,
    spec_audio_at: float | None = None,
    released_at: float | None = None,
) -> dict[str, int]:
    """Each step in ms after the last voiced frame (``eot_decode_ms``: the
    decode's own duration). Steps that did not happen are left out."""
    if tl is None:
        return {}
    t0 = tl.voiced_end_at
    steps = {
        "eot_decode_start_ms": _ms(tl.decode_at, t0),
        "eot_transcript_ms": _ms(tl.decoded_at, t0),
        "eot_confirmed_ms": _ms(tl.confirmed_at, t0),
        "eot_spec_start_ms": _ms(spec_at, t0),  # the speculative reply's model call
        "eot_spec_audio_ms": _ms(spec_audio_at, t0),  # ... its first clause's PCM
        "eot_release_ms": _ms(released_at, t0),
    }
    if tl.decode_at is not None and tl.decoded_at is not None:
        steps["eot_decode_ms"] = _ms(tl.decoded_at, tl.decode_at)
    return {k: v for k, v in steps.items() if v is not None}
