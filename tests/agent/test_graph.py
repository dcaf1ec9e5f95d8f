"""Graph paths (seed §3) with hand-written ports: no sockets, real LangGraph."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from langgraph.checkpoint.memory import InMemorySaver

from tests.fakes import FailingLLM, ScriptedLLM
from voco.agent.context import AgentContext, Emitter, McpOutcome, McpPort
from voco.agent.graph import build_graph
from voco.agent.state import message
from voco.engine.mcp_port import SessionMcpPort
from voco.protocol.messages import McpProgress, McpRequest, McpResponse
from voco.providers.base import ChatMessage, Finished, ToolCall


class RecordingEmitter(Emitter):
    def __init__(self) -> None:
        self.texts: list[str] = []
        self.models: list[str] = []
        self.errors: list[tuple[str, str]] = []
        self.usage: list[tuple[str, int, int]] = []

    async def text(self, text: str) -> None:
        self.texts.append(text)

    async def model_usage(self, model: str, input_tokens: int, output_tokens: int) -> None:
        self.usage.append((model, input_tokens, output_tokens))

    async def model_selected(self, model: str, reasons: tuple[str, ...]) -> None:
        self.models.append(model)

    async def error(self, code: str, message: str) -> None:
        self.errors.append((code, message))


class ScriptedPort(McpPort):
    """Answers each action from a table; records calls in order.

    With ``together`` set, each call first waits until that many calls are in
    flight at once: jobs run one after another never get there, and fail."""

    def __init__(self, answers: dict[str, Any], together: int = 0) -> None:
        self.answers = answers
        self.barrier = asyncio.Barrier(together) if together else None
        self.calls: list[tuple[str, str, dict[str, Any]]] = []

    async def call(self, call_id: str, action: str, payload: dict[str, Any]) -> McpOutcome:
        if self.barrier is not None:
            async with asyncio.timeout(10):  # a bound on a broken run, not a measurement
                await self.barrier.wait()
        answer = self.answers[action]
        self.calls.append((call_id, action, payload))
        if isinstance(answer, Exception):
            raise answer
        return answer


def tool_then_text(call: ToolCall, final: str):
    def script(msgs: list[ChatMessage]):
        return [final] if msgs[-1].role == "tool" else [call]

    return script


async def run(graph, llm, port, text: str, thread: str = "t1", msg_id: str = "u1"):
    emitter = RecordingEmitter()
    ctx = AgentContext(llm, emitter, port, "system")
    user = message(ChatMessage("user", text), msg_id)
    await graph.ainvoke(
        {
            "messages": [user],
            "thread_id": thread,
            "user_id": "alice",
            "project_id": "p",
            "domain": None,
        },
        {"configurable": {"thread_id": thread}},
        context=ctx,
    )
    state = await graph.aget_state({"configurable": {"thread_id": thread}})
    return state.values, emitter


@pytest.fixture
def graph():
    return build_graph(InMemorySaver())


async def test_plain_reply(graph):
    values, em = await run(graph, ScriptedLLM(), ScriptedPort({}), "hello")
    assert "".join(em.texts) == "You said: hello"
    assert [m["role"] for m in values["messages"]] == ["user", "assistant"]
    assert values["route"]["tier"] in ("haiku", "sonnet") and values["route"]["reasons"]
    assert em.models == [values["route"]["model"]]


async def test_tool_call_success(graph):
    call = ToolCall("c1", "list_dir", {"path": "src"})
    port = ScriptedPort({"list_dir": McpOutcome("success", {"entries": [{"name": "a.py"}]})})
    llm = ScriptedLLM(tool_then_text(call, "There is one file."))
    values, em = await run(graph, llm, port, "list the files in src")
    assert [(c[1], c[2]) for c in port.calls] == [("list_dir", {"path": "src"})]
    roles = [m["role"] for m in values["messages"]]
    assert roles == ["user", "assistant", "tool", "assistant"]
    tool = values["messages"][2]
    assert tool["tool_call_id"] == "c1" and json.loads(tool["content"])["status"] == "success"
    assert values["pending_mcp_action"] is None and values["job_queue"] == []
    assert llm.calls[-1][-1].role == "tool"  # the model saw the result


class CountingLLM(ScriptedLLM):
    """Reports tokens on each call's Finished, as a provider does: 100·n in, n out."""

    async def stream(self, **kw: Any) -> Any:
        async for ev in super().stream(**kw):
            if isinstance(ev, Finished):
                n = len(self.calls)
                ev = Finished(ev.stop_reason, ev.model, input_tokens=100 * n, output_tokens=n)
            yield ev


async def test_each_model_call_reports_its_tokens(graph):
    call = ToolCall("c1", "list_dir", {"path": "src"})
    port = ScriptedPort({"list_dir": McpOutcome("success", {"entries": []})})
    llm = CountingLLM(tool_then_text(call, "Nothing there."))
    values, em = await run(graph, llm, port, "list the files in src")
    model = values["route"]["model"]
    assert em.usage == [(model, 100, 1), (model, 200, 2)]  # both calls of the turn
    _, plain = await run(graph, ScriptedLLM(), ScriptedPort({}), "hello", thread="t2")
    assert plain.usage == []  # a provider that reports nothing: no usage, no estimate


@pytest.mark.parametrize(
    ("outcome", "code"),
    [
        (McpOutcome("rejected", error="declined", code="denied_by_user"), "denied_by_user"),
        (McpOutcome("rejected", error="policy", code="denied_by_policy"), "denied_by_policy"),
        (McpOutcome("error", error="outside", code="scope_violation"), "scope_violation"),
    ],
)
async def test_tool_refused_is_told_to_the_model(graph, outcome, code):
    call = ToolCall("c1", "execute_command", {"command": "rm -rf build"})
    llm = ScriptedLLM(tool_then_text(call, "Okay, I won't."))
    values, _ = await run(graph, llm, ScriptedPort({"execute_command": outcome}), "clean up")
    result = json.loads(llm.calls[-1][-1].content)
    assert result["code"] == code and llm.calls[-1][-1].is_error


async def test_tool_timeout_and_runtime_gone():
    sent: list[McpRequest] = []
    request_out = asyncio.Event()

    async def send(req: McpRequest) -> None:
        sent.append(req)
        request_out.set()

    port = SessionMcpPort(send, response_timeout_s=0.2)
    out = await port.call("c1", "read_file", {"path": "x"})
    assert (out.status, out.code) == ("error", "timeout")
    assert sent[0].id == "c1"

    port2 = SessionMcpPort(send, response_timeout_s=5)
    request_out.clear()
    task = asyncio.create_task(port2.call("c2", "read_file", {"path": "x"}))
    await request_out.wait()  # the request is out: the port is waiting on its answer
    port2.close()
    out2 = await task
    assert (out2.status, out2.code) == ("error", "runtime_disconnected")
    assert (await port2.call("c3", "list_dir", {})).code == "runtime_disconnected"


class SteppedClock:
    """A clock moved by hand; ``read_after_step`` is set once the port has read
    it after the last step, i.e. has re-checked its deadline at the new time."""

    def __init__(self) -> None:
        self.now = 0.0
        self.read_after_step = asyncio.Event()

    def __call__(self) -> float:
        self.read_after_step.set()
        return self.now

    def step(self, to: float) -> None:
        self.now = to
        self.read_after_step.clear()


async def test_answers_are_matched_once_and_approval_extends_the_deadline():
    clock = SteppedClock()
    # the port re-checks its deadline every 0.05 s of waiting, read on ``clock``
    port = SessionMcpPort(lambda req: asyncio.sleep(0), response_timeout_s=0.05, clock=clock)
    task = asyncio.create_task(port.call("c1", "write_file", {"path": "a", "content": ""}))
    await clock.read_after_step.wait()  # the request is out and waiting
    assert port.progress(McpProgress(id="c1", stage="awaiting_approval", reason="writes"))
    clock.step(100.0)  # far past the normal deadline, well within the approval one
    await clock.read_after_step.wait()  # the port has looked at the clock since
    assert not task.done()  # still waiting for the person
    assert port.resolve(McpResponse(id="c1", status="success", result={"bytes_written": 0}))
    assert not port.resolve(McpResponse(id="c1", status="success"))  # answered already
    assert not port.resolve(McpResponse(id="nope", status="success"))
    assert (await task).status == "success"


async def test_without_approval_the_normal_deadline_ends_the_wait():
    clock = SteppedClock()
    port = SessionMcpPort(lambda req: asyncio.sleep(0), response_timeout_s=0.05, clock=clock)
    task = asyncio.create_task(port.call("c1", "write_file", {"path": "a", "content": ""}))
    await clock.read_after_step.wait()
    assert not task.done()  # the clock has not moved: the deadline is not past
    clock.step(1.0)
    assert (await task).code == "timeout"


async def test_a_late_answer_to_an_abandoned_request_is_accepted_once():
    port = SessionMcpPort(lambda req: asyncio.sleep(0), response_timeout_s=0.1)
    out = await port.call("slow", "execute_command", {"command": "make"})
    assert out.code == "timeout"
    assert port.resolve(McpResponse(id="slow", status="success"))  # late, but ours
    assert not port.resolve(McpResponse(id="slow", status="success"))  # twice: a violation


async def test_parallel_jobs_one_failing_keeps_the_others(graph):
    calls = [ToolCall("a", "read_file", {"path": "a"}), ToolCall("b", "list_dir", {"path": "."})]

    def script(msgs):
        return ["Done."] if msgs[-1].role == "tool" else calls

    port = ScriptedPort(
        {"read_file": RuntimeError("boom"), "list_dir": McpOutcome("success", {"entries": []})},
        together=2,  # both jobs ran at once, or neither gets past the barrier
    )
    llm = ScriptedLLM(script)
    values, _ = await run(graph, llm, port, "read a and list")
    tools = {
        m["tool_call_id"]: json.loads(m["content"])
        for m in values["messages"]
        if m["role"] == "tool"
    }
    assert tools["b"]["status"] == "success"
    assert tools["a"]["status"] == "error" and tools["a"]["code"] == "internal"


async def test_barge_in_flag_routes_through_handle_interruption(graph):
    cfg = {"configurable": {"thread_id": "t1"}}
    await run(graph, ScriptedLLM(), ScriptedPort({}), "first")
    dangling = message(
        ChatMessage("assistant", "", tool_calls=(ToolCall("cx", "list_dir", {"path": "."}),)),
        "a-dangling",
    )
    await graph.aupdate_state(
        cfg, {"messages": [dangling], "barge_in_detected": True}, as_node="model"
    )
    llm = ScriptedLLM()
    values, _ = await run(graph, llm, ScriptedPort({}), "second", msg_id="u2")
    assert values["barge_in_detected"] is False
    closing = [m for m in values["messages"] if m.get("tool_call_id") == "cx"]
    assert json.loads(closing[0]["content"])["code"] == "interrupted"


async def test_pending_action_in_checkpoint_is_resolved_as_unknown(graph):
    cfg = {"configurable": {"thread_id": "t1"}}
    await run(graph, ScriptedLLM(), ScriptedPort({}), "first")
    call = ToolCall("cz", "execute_command", {"command": "make"})
    await graph.aupdate_state(
        cfg,
        {
            "messages": [message(ChatMessage("assistant", "", tool_calls=(call,)), "a1")],
            "pending_mcp_action": {"id": "cz", "name": "execute_command", "arguments": {}},
        },
        as_node="model",
    )
    llm = ScriptedLLM()
    values, _ = await run(graph, llm, ScriptedPort({}), "did it work?", msg_id="u2")
    closing = [m for m in values["messages"] if m.get("tool_call_id") == "cz"]
    assert json.loads(closing[0]["content"])["code"] == "runtime_disconnected"
    assert values["pending_mcp_action"] is None


async def test_provider_failure_apologises_and_reports(graph):
    values, em = await run(graph, FailingLLM(), ScriptedPort({}), "hello")
    assert em.errors and em.errors[0][0] == "provider_failed"
    assert "sorry" in "".join(em.texts).lower()


async def test_step_limit_bounds_a_looping_model(graph):
    call = ToolCall("loop", "list_dir", {"path": "."})
    llm = ScriptedLLM(lambda msgs: [ToolCall(f"c{len(msgs)}", call.name, call.arguments)])
    port = ScriptedPort({"list_dir": McpOutcome("success", {"entries": []})})
    values, em = await run(graph, llm, port, "loop forever")
    assert len(port.calls) == 8
    assert "too many steps" in "".join(em.texts)
