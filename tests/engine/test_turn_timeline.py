"""The turn end's breakdown (pure) and the speculative wire ids (no sockets)."""

from __future__ import annotations

import asyncio
from typing import Any

from voco.engine.mcp_port import SessionMcpPort
from voco.engine.turn_timeline import TurnTimeline, breakdown
from voco.protocol import messages as m


def test_each_step_is_counted_from_the_last_voiced_frame() -> None:
    tl = TurnTimeline.at_pause(10.032, silent_ms=32)  # noticed one frame after
    tl.decoded_at, tl.confirmed_at = 10.100, 10.160
    got = breakdown(tl, spec_at=10.105, spec_audio_at=10.170, released_at=10.175)
    assert got == {
        "eot_decode_start_ms": 32,
        "eot_decode_ms": 68,
        "eot_transcript_ms": 100,
        "eot_confirmed_ms": 160,
        "eot_spec_start_ms": 105,
        "eot_spec_audio_ms": 170,
        "eot_release_ms": 175,
    }


def test_steps_that_did_not_happen_are_left_out() -> None:
    assert breakdown(None, released_at=1.0) == {}
    tl = TurnTimeline.at_pause(5.0, silent_ms=128)
    assert breakdown(tl) == {"eot_decode_start_ms": 128}


async def test_speculative_requests_never_reuse_a_wire_id() -> None:
    """The runtime runs an id once and drops a replay unanswered, so the same
    model call id asked speculatively twice, then for real, needs three ids."""
    sent: list[m.McpRequest] = []
    all_sent = asyncio.Event()

    async def send(req: m.McpRequest) -> None:
        sent.append(req)
        if len(sent) == 3:
            all_sent.set()

    port = SessionMcpPort(send)
    calls: list[Any] = [
        asyncio.ensure_future(port.call("c1", "list_dir", {}, speculative=True)),
        asyncio.ensure_future(port.call("c1", "list_dir", {}, speculative=True)),
        asyncio.ensure_future(port.call("c1", "list_dir", {})),
    ]
    await all_sent.wait()
    ids = [r.id for r in sent]
    assert len(set(ids)) == 3 and "c1" in ids
    assert [r.speculative for r in sent] == [True, True, None]
    assert all(port.is_speculative(i) for i in ids if i != "c1")
    for i in ids:
        assert port.resolve(m.McpResponse(id=i, status="success", result={"entries": []}))
    outcomes = await asyncio.gather(*calls)
    assert [o.status for o in outcomes] == ["success"] * 3
    assert not any(port.is_speculative(i) for i in ids)  # forgotten once answered
