"""What the tenant store keeps of a response that has ended (pure).

Built from the lifecycle's one :class:`~voco.engine.lifecycle.Ended` event, not
from ``agent.done``: by then the reply's audio has played out or been cut, so
the record carries the audio actually sent (what is billed) and, for a cut
reply, the words that were heard.
"""

from __future__ import annotations

from voco.engine.lifecycle import Ended
from voco.engine.response import Response
from voco.store.tenancy import TurnRecord


def turn_record(resp: Response, end: Ended, now: float) -> TurnRecord:
    """The turn's record; ``now`` stands in for ``agent.done``'s time if none went out."""
    t, life = resp.turn, resp.life
    done_at = resp.done_at if resp.done_at is not None else now
    timings = {"total_ms": int((done_at - life.started_at) * 1000)}
    if t.stt_ms is not None:
        timings["stt_ms"] = t.stt_ms
    if life.first_delta_at is not None:
        timings["llm_ttft_ms"] = int((life.first_delta_at - life.started_at) * 1000)
    return TurnRecord(
        turn_id=t.turn_id,
        response_id=resp.response_id,
        transcript=t.text,
        reply=end.text,
        interrupted=end.interrupted,
        model=end.model,
        heard_text=end.heard_text,
        timings=timings,
        tool_actions=resp.tools.take() if resp.tools is not None else (),
        user_speech_ms=t.speech_ms,
        assistant_audio_ms=end.audio_ms,
        stt_audio_ms=t.stt_audio_ms,
        llm_tokens=dict(resp.emitter.tokens) if resp.emitter is not None else {},
    )
