"""OpenTelemetry spans per turn — only where an exporter is configured.

Why spans next to ``/metrics``: a histogram says the fleet's first audio p99
grew; a trace says which turn, on which model, and which stage of it (the
end-of-turn wait, STT, the model's first token, TTS) took the time. The stage
timings are the ones ``/metrics`` observes — one
:class:`~voco.engine.turn_timings.TurnTimings` per response, built where the
``metrics`` message is (:meth:`TurnTracer.stages`) and emitted where the turn
is recorded (:meth:`TurnTracer.ended`) — so a trace and a histogram never
disagree about a turn.

Off by default and free when off: :func:`tracer_from_env` returns ``None``
unless the standard OpenTelemetry variables ask for an exporter
(``OTEL_TRACES_EXPORTER`` or ``OTEL_EXPORTER_OTLP[_TRACES]_ENDPOINT``), and no
global provider is ever installed (the engine holds its own, so a library's
instrumentation is not turned on behind the operator's back).

What a span carries: opaque engine ids (session, turn, response), a hash of
the thread id (groups a conversation's turns without handing a trace backend
the key to it), the model, the outcome and whether it was interrupted — never
the user's words, the reply, or a token.

The span building is pure (:func:`turn_spans`: clock readings in, span plans
out); :class:`TurnTracer` only converts clock time to wall time and emits.
"""

from __future__ import annotations

import hashlib
import os
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter, SpanExporter

from voco import __version__
from voco.engine.ending import timings_of
from voco.engine.lifecycle import Ended
from voco.engine.response import Response
from voco.engine.turn_timings import TurnTimings

TURN = "voco.turn"
ENGINE_MODEL = "engine"  # session.ENGINE_MODEL: a sentence the engine spoke itself
_PENDING_MAX = 4096  # stage readings of responses not yet ended (bounded: never a leak)

Attr = str | bool | int | float


class TracingConfigError(ValueError):
    """The OTEL_* variables ask for something this engine cannot export."""


# ------------------------------------------------------------------ pure core


@dataclass(frozen=True)
class TurnReadings:
    """One ended response: its ids and outcome, and its stage readings
    (:class:`~voco.engine.turn_timings.TurnTimings`, the same object the
    ``metrics`` message and ``/metrics`` were built from)."""

    session_id: str
    thread_id: str
    turn_id: str
    response_id: str
    model: str
    interrupted: bool
    joined: bool
    timings: TurnTimings
    ended_at: float  # the turn was recorded (audio played out, or cut and settled)
    done_at: float | None = None  # agent.done went out
    audio_ms: int = 0


@dataclass(frozen=True)
class SpanPlan:
    name: str
    start: float  # clock seconds
    end: float
    attributes: Mapping[str, Attr] = field(default_factory=dict)


def thread_hash(thread_id: str) -> str:
    return hashlib.sha256(thread_id.encode()).hexdigest()[:16]


def outcome(r: TurnReadings) -> str:
    if r.joined:
        return "joined"  # cut by more speech while thinking: the turn goes on
    if r.interrupted:
        return "interrupted"
    if r.model == ENGINE_MODEL:
        return "engine_reply"  # a fixed sentence (e.g. "couldn't make out what you said")
    return "answered"


def turn_spans(r: TurnReadings) -> tuple[SpanPlan, list[SpanPlan]]:
    """The turn's span and its stage children, in clock time.

    The turn starts where the user stopped speaking (the last voiced frame) —
    or when the text or the response arrived — and ends when it was recorded.
    A stage the turn never reached (no audio: cut while thinking) has no span.
    """
    children: list[SpanPlan] = []
    t = r.timings
    start = t.started_at
    if t.speech_end_at is not None:
        start = min(start, t.speech_end_at)
        if t.eot_ms is not None:
            eot_start = t.speech_end_at - t.eot_ms / 1000
            children.append(SpanPlan("vad.end_of_turn", eot_start, t.speech_end_at))
            start = min(start, eot_start)
        if t.stt_ms is not None:
            children.append(SpanPlan("stt", t.speech_end_at, t.speech_end_at + t.stt_ms / 1000))
    llm_end = r.done_at if r.done_at is not None else r.ended_at
    children.append(SpanPlan("llm", t.started_at, max(t.started_at, llm_end)))
    if t.first_delta_at is not None and (ttft := t.llm_ttft_ms) is not None:
        children.append(
            SpanPlan("llm.first_token", t.started_at, t.first_delta_at, {"voco.ms": ttft})
        )
    if t.first_clause_at is not None and t.first_audio_at is not None:
        ttfb = t.tts_ttfb_ms or 0
        children.append(
            SpanPlan("tts.first_byte", t.first_clause_at, t.first_audio_at, {"voco.ms": ttfb})
        )
    if t.first_audio_at is not None:
        first = t.first_audio_ms or 0
        children.append(SpanPlan("first_audio", t.started_at, t.first_audio_at, {"voco.ms": first}))
    attrs: dict[str, Attr] = {
        "voco.session.id": r.session_id,
        "voco.thread.hash": thread_hash(r.thread_id),
        "voco.turn.id": r.turn_id,
        "voco.response.id": r.response_id,
        "voco.model": r.model,
        "voco.outcome": outcome(r),
        "voco.interrupted": r.interrupted,
        "voco.audio_ms": r.audio_ms,
    }
    if t.stt_ms is not None:
        attrs["voco.stt_ms"] = t.stt_ms
    end = max(r.ended_at, *(c.end for c in children))
    return SpanPlan(TURN, start, end, attrs), children


# ------------------------------------------------------------ configuration


def _otlp_http() -> SpanExporter:
    # reads OTEL_EXPORTER_OTLP[_TRACES]_{ENDPOINT,HEADERS,TIMEOUT,COMPRESSION} itself
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    return OTLPSpanExporter()


EXPORTERS: Mapping[str, Callable[[], SpanExporter]] = {
    "otlp": _otlp_http,
    "console": ConsoleSpanExporter,
}


def exporter_names(env: Mapping[str, str]) -> list[str]:
    """Which exporters the standard variables ask for ([] — tracing off).

    The OpenTelemetry default for ``OTEL_TRACES_EXPORTER`` is ``otlp``, but an
    engine that starts exporting to localhost:4318 because nobody said
    otherwise is a surprise: here an unset ``OTEL_TRACES_EXPORTER`` means
    ``otlp`` only when an OTLP endpoint is set."""
    if env.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return []
    raw = env.get("OTEL_TRACES_EXPORTER", "").strip().lower()
    if not raw:
        endpoint = env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") or env.get(
            "OTEL_EXPORTER_OTLP_ENDPOINT"
        )
        return ["otlp"] if endpoint else []
    names = [n.strip() for n in raw.split(",") if n.strip()]
    return [] if names == ["none"] else names


def validate_env(
    env: Mapping[str, str], exporters: Mapping[str, Callable[[], SpanExporter]] = EXPORTERS
) -> list[str]:
    """The exporters asked for, or a :class:`TracingConfigError` saying what
    cannot be (``voco serve`` checks this before loading anything)."""
    names = exporter_names(env)
    protocol = env.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL") or env.get(
        "OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf"
    )
    if "otlp" in names and protocol != "http/protobuf":
        raise TracingConfigError(
            f"OTEL_EXPORTER_OTLP_PROTOCOL={protocol}: this engine exports OTLP over "
            "http/protobuf only (point it at the collector's :4318 endpoint)"
        )
    for var in ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT"):
        url = env.get(var, "")
        if "otlp" in names and url and not url.startswith(("http://", "https://")):
            raise TracingConfigError(f"{var} must be an http(s) URL, got {url!r}")
    unknown = [n for n in names if n not in exporters]
    if unknown:
        raise TracingConfigError(
            f"OTEL_TRACES_EXPORTER={','.join(unknown)} is not supported "
            f"(use {', '.join(sorted(exporters))} or none)"
        )
    return names


def tracer_from_env(
    env: Mapping[str, str] | None = None,
    *,
    exporters: Mapping[str, Callable[[], SpanExporter]] = EXPORTERS,
) -> TurnTracer | None:
    """The engine's turn tracer as the OTEL_* variables configure it, or None.

    ``exporters`` maps ``OTEL_TRACES_EXPORTER`` names to factories (tests add
    the SDK's in-memory exporter under a name of their own)."""
    env = os.environ if env is None else env
    names = validate_env(env, exporters)
    if not names:
        return None
    service = env.get("OTEL_SERVICE_NAME") or "voco-engine"
    # Resource.create also merges OTEL_RESOURCE_ATTRIBUTES
    provider = TracerProvider(
        resource=Resource.create({"service.name": service, "service.version": __version__})
    )
    for name in names:
        # batched: export runs on the SDK's thread, never on the event loop
        provider.add_span_processor(BatchSpanProcessor(exporters[name]()))
    return TurnTracer(provider)


# ------------------------------------------------------------------- adapter


class TurnTracer:
    """Emits one span tree per ended response on ``provider``.

    ``clock`` is the sessions' clock (monotonic seconds) and ``wall_ns`` the
    epoch clock spans are stamped in; readings are converted at emission."""

    def __init__(
        self,
        provider: TracerProvider,
        *,
        clock: Callable[[], float] = time.monotonic,
        wall_ns: Callable[[], int] = time.time_ns,
    ) -> None:
        self.provider = provider
        self._tracer = provider.get_tracer("voco.engine", __version__)
        self._clock = clock
        self._wall_ns = wall_ns
        self._pending: OrderedDict[str, TurnTimings] = OrderedDict()

    def stages(self, response_id: str, timings: TurnTimings) -> None:
        """The readings the ``metrics`` message was built from (kept until the end)."""
        self._pending[response_id] = timings
        while len(self._pending) > _PENDING_MAX:
            self._pending.popitem(last=False)

    def forget(self, response_id: str) -> TurnTimings | None:
        return self._pending.pop(response_id, None)

    def ended(
        self, session_id: str, thread_id: str, resp: Response, end: Ended, now: float
    ) -> None:
        """The response has ended (where its turn is recorded): emit its spans."""
        # no metrics went out (cut while thinking): the readings as they stand,
        # first audio from the audio record if any had started
        timings = self.forget(resp.response_id) or timings_of(resp, None, resp.audio.started_at)
        self.emit(
            TurnReadings(
                session_id=session_id,
                thread_id=thread_id,
                turn_id=resp.turn.turn_id,
                response_id=resp.response_id,
                model=end.model,
                interrupted=end.interrupted,
                joined=end.joined,
                timings=timings,
                ended_at=now,
                done_at=resp.done_at,
                audio_ms=end.audio_ms,
            )
        )

    def emit(self, readings: TurnReadings) -> None:
        root, children = turn_spans(readings)
        offset = self._wall_ns() - int(self._clock() * 1e9)

        def ns(t: float) -> int:
            return offset + int(t * 1e9)

        span = self._tracer.start_span(
            root.name, attributes=dict(root.attributes), start_time=ns(root.start)
        )
        ctx = trace.set_span_in_context(span)
        for c in children:
            child = self._tracer.start_span(
                c.name, context=ctx, attributes=dict(c.attributes), start_time=ns(c.start)
            )
            child.end(end_time=ns(c.end))
        span.end(end_time=ns(root.end))

    def flush(self, timeout_s: float = 5.0) -> bool:
        return self.provider.force_flush(int(timeout_s * 1000))

    def shutdown(self) -> None:
        self.provider.shutdown()
