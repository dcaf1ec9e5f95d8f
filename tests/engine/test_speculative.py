"""Speculative replies: bookkeeping (pure), the prefetch buffers, and the
session's rule that nothing of a speculation reaches the client, the
checkpoint or the record before the turn is confirmed (no sockets)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

from langgraph.checkpoint.memory import InMemorySaver

from tests.fakes import ScriptedLLM
from voco.agent.graph import build_graph
from voco.audio.turns import TurnConfig
from voco.engine.prefetch import Prefetch, PrimedLLM, PrimedTTS, Tail
from voco.engine.record import Turn, new_id
from voco.engine.runtime import EngineRuntime
from voco.engine.session import Session
from voco.engine.speculative import SpecState, Speculation, same_request
from voco.protocol import messages as m
from voco.providers.base import TTS, ChatMessage, ToolCall, TTSCapabilities
from voco.store.tenancy import SessionGrant, TurnRecord

REPLY = "Sure, I can help with that."


class CountingTTS(TTS):
    name = "counting"
    capabilities = TTSCapabilities(streaming=True)
    sample_rate = 24000

    def __init__(self) -> None:
        self.said: list[str] = []

    async def synthesize(self, text: str) -> AsyncIterator[bytes]:
        self.said.append(text)
        yield bytes(2 * 2400)  # 100 ms


class Grant(SessionGrant):
    def __init__(self) -> None:
        super().__init__(thread_id="t1", user_id="u1", org_id=None, notice=None)
        self.records: list[TurnRecord] = []

    def run_lock(self) -> contextlib.AbstractAsyncContextManager[None]:
        return contextlib.nullcontext()  # type: ignore[return-value]

    def record_turn(self, record: TurnRecord) -> None:
        self.records.append(record)

    async def release(self) -> None:
        pass


# ------------------------------------------------------------------ pure


def test_same_request_ignores_case_and_punctuation_only() -> None:
    assert same_request("Run the tests.", "run the tests")
    assert not same_request("Run the tests.", "Run the tests again.")


def test_a_speculation_serves_only_the_exact_request_once() -> None:
    msgs = [ChatMessage("user", "Run the tests.")]
    spec = Speculation("Run the tests.", msgs, "haiku")
    assert not spec.serves_llm(msgs, "haiku")  # not taken yet: serves nothing
    assert spec.take("run the tests")
    assert not spec.serves_llm(msgs, "sonnet")
    assert not spec.serves_llm([ChatMessage("user", "Run the tests!?")], "haiku")
    assert spec.serves_llm(list(msgs), "haiku")
    assert not spec.serves_llm(msgs, "haiku")  # once
    spec.clause = "Sure,"
    assert not spec.serves_tts("Sure") and spec.serves_tts("Sure,") and not spec.serves_tts("Sure,")


def test_a_different_confirmed_turn_discards_it() -> None:
    spec = Speculation("Open the readme.", [], "haiku")
    assert not spec.take("Open the readme and the config.")
    assert spec.state is SpecState.DISCARDED
    assert not spec.take("Open the readme.")  # a discarded one never comes back


async def test_tail_replays_live_and_raises_the_producers_failure() -> None:
    tail: Tail[int] = Tail()
    got: list[int] = []

    async def read() -> None:
        async for x in tail.follow():
            got.append(x)

    reader = asyncio.ensure_future(read())
    tail.add(1)
    await asyncio.sleep(0)
    tail.add(2)
    tail.close(RuntimeError("vendor died"))
    try:
        await reader
    except RuntimeError as exc:
        assert str(exc) == "vendor died"
    else:
        raise AssertionError("the failure was swallowed")
    assert got == [1, 2]


async def test_primed_providers_replay_the_prefetch_and_pass_the_rest_through() -> None:
    llm, tts = ScriptedLLM(lambda msgs: [REPLY]), CountingTTS()
    msgs = [ChatMessage("user", "hi")]
    pre = Prefetch(Speculation("hi", msgs, "haiku"), llm, tts, system="s", tools=[])
    await pre.task
    assert pre.spec.clause == "Sure," and tts.said == ["Sure,"]
    assert pre.spec.take("hi")
    plm, ptts = PrimedLLM(llm, pre), PrimedTTS(tts, pre)
    events = [ev async for ev in plm.stream(system="s", messages=msgs, tools=[], tier="haiku")]
    assert len(llm.calls) == 1 and events == pre.events.items
    assert [c async for c in ptts.synthesize("Sure,")] == pre.pcm.items
    assert tts.said == ["Sure,"]
    async for _ in plm.stream(system="s", messages=msgs, tools=[], tier="haiku"):
        pass
    assert len(llm.calls) == 2  # a second call is a real one


async def test_cancel_closes_the_vendor_stream() -> None:
    llm = ScriptedLLM(lambda msgs: [REPLY], delay_s=0.05)
    pre = Prefetch(Speculation("hi", [], "haiku"), llm, CountingTTS(), system="s", tools=[])
    async for _ in pre.events.follow():  # the model started answering
        break
    pre.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await pre.task
    assert llm.cancelled == 1 and pre.spec.state is SpecState.DISCARDED


# --------------------------------------------------------------- session


class Rig:
    def __init__(self, llm: ScriptedLLM) -> None:
        self.llm, self.tts = llm, CountingTTS()
        self.graph = build_graph(InMemorySaver())
        rt: Any = EngineRuntime(
            vad=None,
            stt=None,
            tts=self.tts,
            llm=llm,
            graph=self.graph,  # type: ignore[arg-type]
            auth=None,
            tenants=None,
            turn_config=TurnConfig(),  # type: ignore[arg-type]
        )
        self.texts: list[Any] = []
        self.audio: list[bytes] = []
        self.grant = Grant()

        async def send_text(raw: str) -> None:
            self.texts.append(m.parse_server(raw))

        async def send_bytes(data: bytes) -> None:
            self.audio.append(data)

        self.session = Session(
            rt,
            send_text=send_text,
            send_bytes=send_bytes,
            session_id="s1",
            thread_id="t1",
            user_id="u1",
            project_id="p1",
            domain=None,
            encoding="pcm_s16le",
            grant=self.grant,
            clock=lambda: 0.0,
        )

    def types(self) -> list[str]:
        return [x.type for x in self.texts]

    async def stored(self) -> list[Any]:
        snap = await self.graph.aget_state({"configurable": {"thread_id": "t1"}})
        return list(snap.values.get("messages", []))

    async def prepared(self, text: str) -> Prefetch:
        await self.session.turn_may_end(text)
        pre = self.session.prefetch.current
        assert pre is not None
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.shield(pre.task)
        return pre

    async def confirm(self, text: str) -> None:
        await self.session.start_turn(Turn(new_id(), new_id(), text))
        resp = self.session.response
        assert resp is not None and resp.task is not None
        await resp.task


async def test_a_speculation_the_user_talks_over_is_never_heard_stored_or_recorded() -> None:
    rig = Rig(ScriptedLLM(lambda msgs: [REPLY]))
    pre = await rig.prepared("Open the readme.")
    assert len(rig.llm.calls) == 1 and rig.tts.said == ["Sure,"]  # it did the work...
    await rig.session.turn_goes_on()
    assert pre.spec.state is SpecState.DISCARDED
    assert rig.texts == [] and rig.audio == []  # ...and none of it went out
    assert await rig.stored() == [] and rig.grant.records == []


async def test_a_confirmed_turn_is_served_the_prepared_call_and_clause() -> None:
    rig = Rig(ScriptedLLM(lambda msgs: [REPLY]))
    await rig.prepared("Run the tests.")
    assert rig.texts == [] and rig.audio == []
    await rig.confirm("Run the tests.")
    assert len(rig.llm.calls) == 1  # the model was asked once, speculatively
    assert rig.tts.said == ["Sure,", "I can help with that."]  # the first clause once
    types = rig.types()
    assert types.index("transcript.final") < types.index("agent.delta") < types.index("audio.start")
    assert rig.audio  # released after confirmation
    roles = [x["role"] for x in await rig.stored()]
    assert roles == ["user", "assistant"]
    await rig.session.close()  # a turn is recorded when its audio ends (here: the close)
    assert len(rig.grant.records) == 1


async def test_a_turn_confirmed_with_other_words_asks_the_model_afresh() -> None:
    rig = Rig(ScriptedLLM(lambda msgs: [REPLY]))
    pre = await rig.prepared("Open the readme.")
    await rig.confirm("Open the readme and the config file.")
    assert pre.spec.state is SpecState.DISCARDED
    assert len(rig.llm.calls) == 2
    assert rig.llm.calls[-1][-1].content == "Open the readme and the config file."
    await rig.session.close()  # recorded when its audio ends (here: the close)
    assert len(rig.grant.records) == 1


async def test_no_tool_runs_before_the_turn_is_confirmed() -> None:
    call = ToolCall("c1", "write_file", {"path": "x.txt", "content": "hi"})
    rig = Rig(ScriptedLLM(lambda msgs: [call] if msgs[-1].role == "user" else ["Done."]))
    await rig.prepared("Write hi to x dot txt.")
    await rig.session.turn_goes_on()
    assert "mcp.request" not in rig.types() and rig.session.mcp.pending_rpc_futures == {}


async def test_a_failed_speculative_call_fails_the_confirmed_turn_as_usual() -> None:
    from voco.providers.base import ProviderError

    rig = Rig(ScriptedLLM(fail=ProviderError("scripted", "HTTP 529 overloaded", retryable=True)))
    await rig.prepared("Run the tests.")
    assert rig.texts == []  # the failure is not said before the turn is confirmed
    await rig.confirm("Run the tests.")
    assert len(rig.llm.calls) == 1
    errors = [x for x in rig.texts if x.type == "error"]
    assert [e.code for e in errors] == ["provider_failed"] and "529" in errors[0].message
    done = [x for x in rig.texts if x.type == "agent.done"]
    assert len(done) == 1 and "Sorry" in done[0].text


class GatedGraph:
    """The real graph, except that writing state waits for ``gate`` (so a cut's
    interrupted record can be held half-way while the next turn starts)."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner
        self.gate, self.entered = asyncio.Event(), asyncio.Event()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    async def aupdate_state(self, *args: Any, **kwargs: Any) -> Any:
        self.entered.set()
        await self.gate.wait()
        return await self._inner.aupdate_state(*args, **kwargs)


async def test_the_next_turn_runs_only_after_the_cut_reply_is_recorded() -> None:
    rig = Rig(ScriptedLLM(lambda msgs: [REPLY]))
    await rig.confirm("Tell me about this project.")  # audible: the clock stands at 0
    gated = rig.session.rt.graph = GatedGraph(rig.graph)
    cut = asyncio.ensure_future(rig.session.on_interrupt())
    await gated.entered.wait()  # the cut is writing the interrupted record
    turn = asyncio.ensure_future(rig.session.start_turn(Turn(new_id(), new_id(), "Go on.")))
    for _ in range(200):  # room for a run that does not wait to ask the model
        if len(rig.llm.calls) == 2:
            break
        await asyncio.sleep(0)
    gated.gate.set()
    await asyncio.gather(cut, turn)
    resp = rig.session.response
    assert resp is not None and resp.task is not None
    await resp.task
    cut_reply = [x for x in rig.llm.calls[-1] if x.role == "assistant" and x.interrupted]
    assert len(rig.llm.calls) == 2 and len(cut_reply) == 1


# ------------------------------------------------- read-only tools (issue 10 §1)


def test_only_steps_of_read_only_tools_may_run_speculatively() -> None:
    from voco.engine.speculative import may_run_speculatively

    read = ToolCall("a", "read_file", {"path": "README.md"})
    listing = ToolCall("b", "list_dir", {"path": "."})
    write = ToolCall("c", "write_file", {"path": "x", "content": "y"})
    run = ToolCall("d", "execute_command", {"command": "git status"})
    assert may_run_speculatively([read, listing])
    assert not may_run_speculatively([read, write])  # one writer: the whole step waits
    assert not may_run_speculatively([run])  # the runtime decides commands, per call
    assert not may_run_speculatively([])


def test_a_speculative_tool_call_is_served_exactly_once() -> None:
    spec = Speculation("List the files.", [], "haiku")
    spec.tools["c1"] = ("list_dir", {"path": "."})
    assert not spec.serves_tool("c1", "list_dir", {"path": "."})  # not taken yet
    spec.take("List the files.")
    assert not spec.serves_tool("c1", "list_dir", {"path": "src"})
    assert spec.serves_tool("c1", "list_dir", {"path": "."})
    assert not spec.serves_tool("c1", "list_dir", {"path": "."})


LISTING = ToolCall("c1", "list_dir", {"path": "."})


def _lister(msgs: list[ChatMessage]) -> list[str | ToolCall]:
    return [LISTING] if msgs[-1].role == "user" else ["There are two files."]


async def _answer(rig: Rig, n: int, result: Any = None, **kw: Any) -> m.McpRequest:
    """Answer the ``n``th mcp.request as the runtime would, once it went out."""
    for _ in range(20_000):  # a graph run takes many loop turns to get there
        reqs = [x for x in rig.texts if x.type == "mcp.request"]
        if len(reqs) >= n:
            break
        await asyncio.sleep(0)
    req = reqs[n - 1]
    answer = {"status": "success", "result": result or {"entries": []}, **kw}
    assert rig.session.mcp.resolve(m.McpResponse(id=req.id, **answer))
    return req


async def _prepare_with_tools(rig: Rig, text: str) -> Prefetch:
    await rig.session.turn_may_end(text)
    pre = rig.session.prefetch.current
    assert pre is not None
    return pre


async def test_read_only_tools_run_during_the_pause_and_serve_the_confirmed_turn() -> None:
    rig = Rig(ScriptedLLM(_lister))
    pre = await _prepare_with_tools(rig, "What files are here?")
    req = await _answer(rig, 1, {"entries": [{"name": "a.py"}]})
    await pre.task
    assert req.speculative is True and req.action == "list_dir" and req.id != LISTING.id
    assert "state" not in rig.types()  # the user is still pausing: no running_tool
    assert len(rig.llm.calls) == 2 and rig.tts.said == ["There are two files."]
    assert rig.audio == [] and await rig.stored() == []  # nothing out, nothing stored
    await rig.confirm("What files are here?")
    assert len(rig.llm.calls) == 2  # both model calls served from the speculation
    assert [x.type for x in rig.texts].count("mcp.request") == 1  # run once
    assert rig.audio
    roles = [x["role"] for x in await rig.stored()]
    assert roles == ["user", "assistant", "tool", "assistant"]
    await rig.session.close()
    (record,) = rig.grant.records
    assert [a.action for a in record.tool_actions] == ["list_dir"]  # it ran for this turn


async def test_a_discarded_speculation_leaves_its_read_in_no_record() -> None:
    rig = Rig(ScriptedLLM(_lister))
    pre = await _prepare_with_tools(rig, "What files are here?")
    await _answer(rig, 1)
    await pre.task
    await rig.session.turn_goes_on()
    await rig.session.close()
    assert await rig.stored() == [] and rig.grant.records == [] and rig.audio == []


async def test_a_read_the_runtime_refuses_speculatively_is_asked_for_in_the_turn() -> None:
    rig = Rig(ScriptedLLM(_lister))
    pre = await _prepare_with_tools(rig, "What files are here?")
    await _answer(rig, 1, status="rejected", code="needs_confirmed_turn", result=None)
    await pre.task
    assert len(rig.llm.calls) == 1  # the speculation stopped at the refusal
    confirmed = asyncio.ensure_future(rig.confirm("What files are here?"))
    real = await _answer(rig, 2)
    await confirmed
    assert not real.speculative and real.action == "list_dir"
    assert len(rig.llm.calls) == 2 and rig.audio
