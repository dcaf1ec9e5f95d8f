"""Behaviour that docs/protocol.md writes down beyond the original contract:
a typed turn while speaking (§5.5), an empty typed turn (§5.5), a second
``session.start`` (§5.7) and the approval sentence spliced into speech (§6.3).
Real engine on 127.0.0.1, raw WebSocket client."""

from __future__ import annotations

from typing import Any

from tests.engine.test_protocol_conformance import assert_error, start_msg, started
from tests.fakes import LONG_REPLY, ScriptedLLM
from voco.auth import user_uuid
from voco.providers.base import ChatMessage, ToolCall


async def test_text_input_while_speaking_halts_with_reason_interrupt(engine_factory: Any) -> None:
    def script(msgs: list[ChatMessage]) -> list[str | ToolCall]:
        return [LONG_REPLY] if "long" in str(msgs[-1].content) else ["Short answer."]

    async with engine_factory(ScriptedLLM(script)) as eng:
        peer, _ = await started(eng.url, eng.token())
        await peer.send({"type": "text.input", "text": "say something long"})
        first = (await peer.until_type("audio.start", timeout=20))[-1]
        await peer.send({"type": "text.input", "text": "stop and say something short"})
        msgs = await peer.until_type("halt_audio")
        halt = msgs[-1]
        assert halt["reason"] == "interrupt" and halt["response_id"] == first["response_id"]
        after = await peer.until(
            lambda m: m["type"] == "transcript.final" and m["text"].startswith("stop")
        )
        done = await peer.until(
            lambda m: m["type"] == "agent.done" and m["text"] == "Short answer."
        )
        await peer.close()
    heard = [m for m in msgs + after + done if m["type"] == "agent.done" and m["interrupted"]]
    assert heard and heard[0]["response_id"] == first["response_id"]


async def test_empty_text_input_is_a_non_fatal_error_and_starts_no_turn(
    engine_factory: Any,
) -> None:
    async with engine_factory(ScriptedLLM()) as eng:
        peer, _ = await started(eng.url, eng.token())
        await peer.send({"type": "text.input", "text": "  "})
        msgs = await peer.ping("after-empty")
        await peer.close()
    errors = [m for m in msgs if m["type"] == "error"]
    assert len(errors) == 1
    assert_error(errors[0], fatal=False, code="empty_text")
    assert not [m for m in msgs if m["type"] in ("transcript.final", "agent.delta")]


async def test_a_second_session_start_is_non_fatal_and_changes_nothing(
    engine_factory: Any,
) -> None:
    async with engine_factory(ScriptedLLM()) as eng:
        peer, ready = await started(eng.url, eng.token("alice"))
        await peer.send(start_msg(eng.token("mallory"), thread_id="other"))
        msgs = await peer.ping("after-second-start")
        await peer.send({"type": "text.input", "text": "hello"})
        done = (await peer.until_type("agent.done", timeout=15))[-1]
        await peer.close()
    [err] = [m for m in msgs if m["type"] == "error"]
    assert_error(err, fatal=False, code="protocol_error")
    assert not [m for m in msgs if m["type"] == "session.ready"]
    assert done["text"] == "You said: hello"
    assert ready["user_id"] == user_uuid("alice")


async def test_awaiting_approval_splices_the_documented_sentence(engine_factory: Any) -> None:
    def script(msgs: list[ChatMessage]) -> list[str | ToolCall]:
        if msgs[-1].role == "user":
            return ["Let me write it.", ToolCall("c1", "write_file", {"path": "a", "content": "b"})]
        return ["It was not approved."]

    async with engine_factory(ScriptedLLM(script)) as eng:
        peer, _ = await started(eng.url, eng.token())
        await peer.send({"type": "text.input", "text": "write the file"})
        req = (await peer.until_type("mcp.request", timeout=15))[-1]
        await peer.send(
            {
                "type": "mcp.progress",
                "id": req["id"],
                "stage": "awaiting_approval",
                "reason": "it writes a file",
            }
        )
        await peer.until(lambda m: m["type"] == "state" and m["value"] == "awaiting_approval")
        seen = await peer.until(
            lambda m: m["type"] == "agent.delta" and "approval" in m["text"], timeout=10
        )
        await peer.send(
            {
                "type": "mcp.response",
                "id": req["id"],
                "status": "rejected",
                "code": "denied_by_user",
                "error": "not approved",
            }
        )
        seen += await peer.until_type("agent.done", timeout=15)
        await peer.close()
    deltas = "".join(m["text"] for m in seen if m["type"] == "agent.delta")
    sentence = (
        " I'm waiting for your approval to go ahead."
        " It needs your approval because it writes a file. "
    )
    assert sentence in deltas
