"""``voco talk`` follows a false barge-in (issue 10 §2): what it writes is the
reply's audio up to ``resume_audio``'s ``from_ms``, then the resumed stream —
one reply, no gap, no repeat. A hand-written session double feeds the
messages; no sockets."""

from __future__ import annotations

import io
from typing import Any

from voco.local.engine_client import Received
from voco.local.talk import TalkResult, _collect, _Heard, audio_offset
from voco.protocol import messages as m


class Script:
    """A ResumingSession double: plays back a fixed list of received items."""

    client = None

    def __init__(self, items: list[Received]) -> None:
        self.items = items
        self.sent: list[Any] = []

    async def recv(self) -> Received:
        return self.items.pop(0)

    async def send(self, msg: Any) -> None:
        self.sent.append(msg)


def pcm(ms: int, value: int) -> bytes:
    return bytes([value, 0]) * (24 * ms)  # 24 kHz, 16-bit


def msg(x: m._Msg) -> Received:
    return Received(0.0, message=x)  # type: ignore[arg-type]


async def test_the_written_reply_keeps_audio_up_to_the_resume_point_then_the_rest() -> None:
    r, t = "r1", "t1"
    items = [
        msg(m.TranscriptFinal(turn_id=t, text="hi")),
        msg(m.AudioStart(response_id=r, encoding="pcm_s16le", sample_rate=24000)),
        Received(0.0, audio=pcm(1000, 1)),  # 0–1000 ms
        Received(0.0, audio=pcm(500, 2)),  # 1000–1500 ms: sent, not yet played
        msg(m.HaltAudio(response_id=r, reason="barge_in", t_ms=5000)),
        Received(0.0, audio=pcm(80, 9)),  # a late frame of the halted stream: dropped
        msg(m.ResumeAudio(response_id=r, from_ms=1200, encoding="pcm_s16le", t_ms=5400)),
        Received(0.0, audio=pcm(300, 3)),  # 1200–1500 ms again, freshly encoded
        Received(0.0, audio=pcm(500, 4)),  # 1500–2000 ms
        msg(m.AudioEnd(response_id=r, duration_ms=2000)),
        msg(m.AgentDone(turn_id=t, response_id=r, text="hello", model="m", interrupted=False)),
        msg(m.Metrics(turn_id=t)),
    ]
    result = TalkResult(encoding="pcm_s16le")
    session = Script(items)
    await _collect(
        session,  # type: ignore[arg-type]
        result,
        None,  # type: ignore[arg-type]
        io.StringIO(),
        _Heard(),
        want_audio=True,
        player=None,
    )
    want = pcm(1000, 1) + pcm(200, 2) + pcm(300, 3) + pcm(500, 4)
    assert bytes(result.audio) == want  # 2000 ms: one reply, nothing twice
    assert not result.interrupted and result.reply == "hello"
    # played in full, on the reply's timeline
    assert [(x.response_id, x.played_ms) for x in session.sent] == [(r, 2000)]


def test_mp3_resume_points_land_on_whole_frames() -> None:
    assert audio_offset(1000, "mp3") % 144 == 0
    assert audio_offset(1000, "pcm_s16le") == 48_000
