"""OpenTelemetry spans per turn (issue 11 §2): one ``voco.turn`` span with the
stage children, through the real configuration seam and the real protocol;
nothing installed when nothing is configured; and the real OTLP/HTTP exporter
delivering to a receiver on 127.0.0.1 (protobuf parsed, no mocks)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from dataclasses import fields
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import numpy as np
import pytest
from opentelemetry import trace
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace import TracerProvider as SdkProvider
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from tests.fakes import ScriptedLLM
from tests.speech import piper_speech, silence
from voco.engine.tracing import (
    TURN,
    TracingConfigError,
    TurnReadings,
    exporter_names,
    thread_hash,
    tracer_from_env,
    turn_spans,
    validate_env,
)
from voco.engine.turn_timings import TurnTimings
from voco.local.engine_client import EngineClient
from voco.local.streamer import RealtimeStreamer
from voco.protocol import messages as m

pytestmark = pytest.mark.timeout(120)

STAGES_OF_A_TEXT_TURN = {"llm", "llm.first_token", "tts.first_byte", "first_audio"}
SECRET = "my bank password is hunter2"


# ------------------------------------------------------------------ pure core


TIMING_FIELDS = {f.name for f in fields(TurnTimings)}


def readings(**kw: Any) -> TurnReadings:
    base: dict[str, Any] = dict(
        session_id="s1",
        thread_id="t1",
        turn_id="u1",
        response_id="r1",
        model="m",
        interrupted=False,
        joined=False,
        ended_at=14.0,
    )
    stage = {"started_at": 10.0, **{k: v for k, v in kw.items() if k in TIMING_FIELDS}}
    rest = {k: v for k, v in kw.items() if k not in TIMING_FIELDS}
    return TurnReadings(**{**base, **rest}, timings=TurnTimings(**stage))


def test_a_voice_turn_has_every_stage_in_clock_order() -> None:
    r = readings(
        speech_end_at=9.5,
        eot_ms=600,
        stt_ms=300,
        first_delta_at=10.25,
        done_at=11.0,
        first_clause_at=10.5,
        first_audio_at=10.75,
    )
    root, children = turn_spans(r)
    by = {c.name: c for c in children}
    assert set(by) == STAGES_OF_A_TEXT_TURN | {"vad.end_of_turn", "stt"}
    assert by["vad.end_of_turn"].start == pytest.approx(8.9) and by["vad.end_of_turn"].end == 9.5
    assert (by["stt"].start, by["stt"].end) == (9.5, pytest.approx(9.8))
    assert (by["llm"].start, by["llm"].end) == (10.0, 11.0)
    assert by["llm.first_token"].attributes["voco.ms"] == 250
    assert by["tts.first_byte"].attributes["voco.ms"] == 250
    assert by["first_audio"].attributes["voco.ms"] == 750
    # the turn starts with the user's last voiced frame and ends at its record
    assert root.start == pytest.approx(8.9) and root.end == 14.0
    assert root.attributes["voco.outcome"] == "answered"


def test_a_reply_cut_while_thinking_has_no_audio_stages() -> None:
    root, children = turn_spans(readings(interrupted=True, joined=True))
    assert {c.name for c in children} == {"llm"}
    assert root.attributes["voco.outcome"] == "joined"
    assert root.attributes["voco.interrupted"] is True


@pytest.mark.parametrize(
    ("kw", "outcome"),
    [
        ({}, "answered"),
        ({"interrupted": True}, "interrupted"),
        ({"model": "engine"}, "engine_reply"),
    ],
)
def test_outcome(kw: dict[str, Any], outcome: str) -> None:
    assert turn_spans(readings(**kw))[0].attributes["voco.outcome"] == outcome


def test_the_thread_id_is_hashed_not_sent() -> None:
    root, _ = turn_spans(readings(thread_id="thread-of-alice"))
    assert "thread-of-alice" not in {str(v) for v in root.attributes.values()}
    assert root.attributes["voco.thread.hash"] == thread_hash("thread-of-alice")


@pytest.mark.parametrize(
    ("env", "names"),
    [
        ({}, []),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318"}, ["otlp"]),
        ({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://c:4318/v1/traces"}, ["otlp"]),
        ({"OTEL_TRACES_EXPORTER": "console"}, ["console"]),
        ({"OTEL_TRACES_EXPORTER": "none", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://c"}, []),
        ({"OTEL_TRACES_EXPORTER": "otlp", "OTEL_SDK_DISABLED": "true"}, []),
        ({"OTEL_TRACES_EXPORTER": "otlp,console"}, ["otlp", "console"]),
    ],
)
def test_which_exporters_the_standard_variables_ask_for(
    env: dict[str, str], names: list[str]
) -> None:
    assert exporter_names(env) == names


@pytest.mark.parametrize(
    ("env", "says"),
    [
        ({"OTEL_TRACES_EXPORTER": "zipkin"}, "zipkin is not supported"),
        (
            {"OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"},
            "http/protobuf only",
        ),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "collector:4318"}, "an http(s) URL"),
    ],
)
def test_an_unusable_configuration_is_one_clear_error(env: dict[str, str], says: str) -> None:
    with pytest.raises(TracingConfigError, match=says.replace("(", r"\(").replace(")", r"\)")):
        validate_env(env)


def test_nothing_configured_installs_no_provider() -> None:
    assert tracer_from_env({}) is None
    # a configured engine keeps its provider to itself: the global one stays the no-op proxy
    configured = tracer_from_env({"OTEL_TRACES_EXPORTER": "console"})
    assert configured is not None
    configured.shutdown()
    assert not isinstance(trace.get_tracer_provider(), SdkProvider)


# ------------------------------------------------- through the real protocol


async def text_turn(eng: Any, text: str) -> str:
    """One text turn, played out and recorded; returns the thread id."""
    c = await EngineClient.connect(eng.url, m.SessionStart(token=eng.token()))

    async def until_recorded() -> None:
        seen_end = False
        while True:
            r = await c.recv()
            if isinstance(r.message, m.AudioEnd):
                seen_end = True
            if seen_end and r.message == m.State(value="listening"):
                return  # played out: the turn is recorded (and its span ended)

    await c.send(m.TextInput(text=text))
    await asyncio.wait_for(until_recorded(), 60)
    await c.close()
    return c.ready.thread_id


def spans_by_name(spans: tuple[ReadableSpan, ...] | list[ReadableSpan]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for s in spans:
        out.setdefault(s.name, []).append(s)
    return out


async def test_a_text_turn_is_one_turn_span_with_its_stage_children(engine_factory: Any) -> None:
    memory = InMemorySpanExporter()
    tracer = tracer_from_env(
        {"OTEL_TRACES_EXPORTER": "memory"}, exporters={"memory": lambda: memory}
    )
    assert tracer is not None
    async with engine_factory(ScriptedLLM()) as eng:
        eng.runtime.tracer = tracer
        thread = await text_turn(eng, SECRET)
    assert tracer.flush()
    spans = memory.get_finished_spans()
    by = spans_by_name(spans)
    (turn,) = by.pop(TURN)
    assert set(by) == STAGES_OF_A_TEXT_TURN
    for (child,) in by.values():
        assert child.parent is not None and child.parent.span_id == turn.context.span_id
        assert child.context.trace_id == turn.context.trace_id
        assert turn.start_time <= child.start_time <= child.end_time <= turn.end_time
    a = turn.attributes
    assert a["voco.outcome"] == "answered" and a["voco.interrupted"] is False
    assert a["voco.model"] == "scripted-haiku" and a["voco.audio_ms"] > 0
    assert a["voco.thread.hash"] == thread_hash(thread)
    # never the user's words or the reply, anywhere in the trace
    values = {str(v) for s in spans for v in (s.attributes or {}).values()}
    assert not any("hunter2" in v or "You said" in v for v in values)
    tracer.shutdown()


async def test_a_spoken_turn_has_the_vad_and_stt_stages(engine_factory: Any) -> None:
    memory = InMemorySpanExporter()
    tracer = tracer_from_env(
        {"OTEL_TRACES_EXPORTER": "memory"}, exporters={"memory": lambda: memory}
    )
    assert tracer is not None
    async with engine_factory(ScriptedLLM()) as eng:
        eng.runtime.tracer = tracer
        c = await EngineClient.connect(eng.url, m.SessionStart(token=eng.token()))
        up = RealtimeStreamer(c.send_audio)
        up.start()
        up.say(np.concatenate([silence(200), piper_speech("Open the readme.")]))

        async def until_recorded() -> None:
            seen_end = False
            while True:
                r = await c.recv()
                seen_end = seen_end or isinstance(r.message, m.AudioEnd)
                if seen_end and r.message == m.State(value="listening"):
                    return

        await asyncio.wait_for(until_recorded(), 60)
        await up.stop()
        await c.close()
    assert tracer.flush()
    by = spans_by_name(memory.get_finished_spans())
    (turn,) = by[TURN]
    assert {"vad.end_of_turn", "stt"} <= set(by)
    (eot,), (stt,) = by["vad.end_of_turn"], by["stt"]
    assert eot.end_time <= stt.start_time  # the silence rule fires, then STT finishes
    assert turn.attributes["voco.stt_ms"] >= 0
    tracer.shutdown()


# ------------------------------------------------ the real OTLP/HTTP exporter


class Receiver(ThreadingHTTPServer):
    """An OTLP/HTTP trace receiver on 127.0.0.1: POST /v1/traces, protobuf."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.requests: list[ExportTraceServiceRequest] = []
        self.got = threading.Event()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _Handler(BaseHTTPRequestHandler):
    server: Receiver

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["content-length"]))
        ok = self.path == "/v1/traces" and self.headers["content-type"] == "application/x-protobuf"
        if ok:
            req = ExportTraceServiceRequest()
            req.ParseFromString(body)
            self.server.requests.append(req)
            self.server.got.set()
        self.send_response(200 if ok else 404)
        self.send_header("content-type", "application/x-protobuf")
        self.send_header("content-length", "0")
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    t = threading.Thread(target=r.serve_forever, daemon=True)
    t.start()
    try:
        yield r
    finally:
        r.shutdown()
        r.server_close()


async def test_the_otlp_exporter_delivers_the_turn_to_a_collector(
    engine_factory: Any, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.url)
    monkeypatch.setenv("OTEL_SERVICE_NAME", "voco-test")
    tracer = tracer_from_env()  # os.environ, as `voco serve` reads it
    assert tracer is not None
    async with engine_factory(ScriptedLLM()) as eng:
        eng.runtime.tracer = tracer
        await text_turn(eng, "hello")
    assert await asyncio.to_thread(tracer.flush)
    assert receiver.got.is_set()
    names: set[str] = set()
    services: set[str] = set()
    for req in receiver.requests:
        for rs in req.resource_spans:
            services |= {
                a.value.string_value for a in rs.resource.attributes if a.key == "service.name"
            }
            for ss in rs.scope_spans:
                names |= {s.name for s in ss.spans}
    assert services == {"voco-test"}
    assert names == {TURN} | STAGES_OF_A_TEXT_TURN
    await asyncio.to_thread(tracer.shutdown)
