"""A response's stage readings and the durations derived from them — one place.

Why one place: the ``metrics`` message, the ``/metrics`` histograms, the turn
record in the tenant store and the OpenTelemetry spans all report the same
stage durations (STT, the model's first token, TTS first byte, first audio,
end to end). Each used to subtract the clock readings itself, so a change to
one (what "first audio" starts from) could silently disagree with another.
Now every reader takes a :class:`TurnTimings` and its derived milliseconds.

Pure: clock readings in (seconds on the session's clock), integers out.
"""

from __future__ import annotations

from dataclasses import dataclass


def _ms(start: float | None, end: float | None) -> int | None:
    return None if start is None or end is None else int((end - start) * 1000)


@dataclass(frozen=True)
class TurnTimings:
    """When each stage of one response happened (``None``: it never did)."""

    started_at: float  # the response began (the model call starts)
    speech_end_at: float | None = None  # end of speech decided (or the text arrived)
    eot_ms: int | None = None  # VAD: last voiced frame → the silence rule fired
    stt_ms: int | None = None  # measured by the listener, not a difference of readings
    first_delta_at: float | None = None  # the model's first text
    first_clause_at: float | None = None  # the first clause went to TTS
    first_audio_at: float | None = None  # its first audio went out

    @property
    def llm_ttft_ms(self) -> int | None:
        return _ms(self.started_at, self.first_delta_at)

    @property
    def tts_ttfb_ms(self) -> int | None:
        return _ms(self.first_clause_at, self.first_audio_at)

    @property
    def first_audio_ms(self) -> int | None:
        """Response start → first audio (the engine's own part of the wait)."""
        return _ms(self.started_at, self.first_audio_at)

    @property
    def e2e_ms(self) -> int | None:
        """End of the user's speech → first audio (what the user waits);
        reported only with a TTS first byte, as the ``metrics`` message has it."""
        if self.tts_ttfb_ms is None:
            return None
        return _ms(self.speech_end_at, self.first_audio_at)

    def wire_fields(self) -> dict[str, int]:
        """The ``metrics`` message's stage timings (docs/protocol.md), present
        only for the stages this response reached."""
        fields: dict[str, int] = {}
        if self.stt_ms is not None:
            fields["stt_ms"] = self.stt_ms
        if (ttft := self.llm_ttft_ms) is not None:
            fields["llm_ttft_ms"] = ttft
        if (ttfb := self.tts_ttfb_ms) is not None:
            fields["tts_ttfb_ms"] = ttfb
            if (e2e := self.e2e_ms) is not None:
                fields["e2e_ms"] = e2e
                parts = sum(fields.get(k, 0) for k in ("stt_ms", "llm_ttft_ms", "tts_ttfb_ms"))
                fields["engine_overhead_ms"] = max(0, e2e - parts)
        return fields

    def observed(self) -> dict[str, int]:
        """What ``/metrics`` observes: the wire fields plus first audio (off the wire)."""
        fields = self.wire_fields()
        if (first := self.first_audio_ms) is not None:
            fields["first_audio_ms"] = first
        return fields
