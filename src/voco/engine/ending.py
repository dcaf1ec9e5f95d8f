"""What the tenant store keeps of a response that has ended (pure).

Built from the lifecycle's one :class:`~voco.engine.lifecycle.Ended` event, not
from ``agent.done``: by then the reply's audio has played out or been cut, so
the record carries the audio actually sent (what is billed) and, for a cut
reply, the words that were heard.
"""

from __future__ import annotations

from voco.agent.state import Message
from voco.engine.lifecycle import Ended
from voco.engine.record import Turn
from voco.engine.response import Response
from voco.engine.turn_timings import TurnTimings
from voco.store.tenancy import TurnRecord


def timings_of(
    resp: Response, first_clause_at: float | None = None, first_audio_at: float | None = None
) -> TurnTimings:
    """The response's stage readings — the one builder the ``metrics`` message,
    ``/metrics``, the turn record and the turn's span all read (the speaker's
    two readings come from where the ``metrics`` message is built)."""
    t, life = resp.turn, resp.life
    return TurnTimings(
        started_at=life.started_at,
        speech_end_at=t.speech_end_at,
        eot_ms=t.eot_ms,
        stt_ms=t.stt_ms,
        first_delta_at=life.first_delta_at,
        first_clause_at=first_clause_at,
        first_audio_at=first_audio_at,
    )


def turn_record(resp: Response, end: Ended, now: float) -> TurnRecord:
    """The turn's record; ``now`` stands in for ``agent.done``'s time if none went out."""
    t, stages = resp.turn, timings_of(resp)
    done_at = resp.done_at if resp.done_at is not None else now
    timings = {"total_ms": int((done_at - stages.started_at) * 1000)}
    if stages.stt_ms is not None:
        timings["stt_ms"] = stages.stt_ms
    if (ttft := stages.llm_ttft_ms) is not None:
        timings["llm_ttft_ms"] = ttft
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


def rollback_updates(existing: list[Message], turn: Turn) -> list[Message]:
    """Removal markers that take ``turn`` out of the thread (merged like any update).

    For a turn cut by a drain before anything of its reply reached the user —
    no ``agent.done``, no audio: the client re-sends it to the next engine
    (:class:`voco.local.resuming.ResumingSession`), which answers it afresh, so
    what this engine stored of it must go — its user message and everything
    the run wrote after it, up to the next user message (another session's
    later turn on the thread is not this turn's). Tool calls it ran go too: the
    re-sent turn sees the project as those calls left it and may run them
    again, which is the same as the user asking again on a fresh thread.
    """
    start = next((i for i, x in enumerate(existing) if x.get("id") == turn.user_msg_id), None)
    if start is None:
        return []
    out: list[Message] = [{"id": turn.user_msg_id, "removed": True}]
    for x in existing[start + 1 :]:
        if x.get("role") == "user":
            break
        out.append({"id": x.get("id"), "removed": True})
    return out
