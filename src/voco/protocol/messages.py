"""Wire models for protocol v1 (``shared/protocol.md`` §2–§5).

One pydantic model per message ``type``. Parsing goes through :func:`parse_client`
/ :func:`parse_server`, which return a typed model or raise :class:`ProtocolError`
with a code and message fit to send back to the peer — so a malformed frame is
always answered with a precise error instead of a traceback.
"""

from __future__ import annotations

import json
import re
from typing import Annotated, Any, Literal, cast

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from voco.protocol.activity import ActivityDetail


class ProtocolError(Exception):
    """A frame the peer sent that violates the protocol.

    ``code`` is the machine-readable error code sent in the ``error`` message.
    """

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class _Msg(BaseModel):
    # Unknown extra fields are ignored (forward compatible), but every declared
    # field is type-checked strictly enough to catch garbage.
    model_config = ConfigDict(extra="ignore", frozen=True)

    def to_json(self) -> str:
        return self.model_dump_json(exclude_none=True)


# ---------------------------------------------------------------- audio format

Encoding = Literal["mp3", "pcm_s16le"]


class AudioOutput(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)
    encoding: Encoding = "mp3"
    sample_rate: Literal[24000] = 24000


class AudioConfig(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)
    output: AudioOutput = Field(default_factory=AudioOutput)


# ---------------------------------------------------------- client -> engine


MAX_PROJECT_NAMES = 200  # session.start.project_names entries
MAX_NAME_CHARS = 128


class SessionStart(_Msg):
    type: Literal["session.start"] = "session.start"
    token: str | None = None
    project_id: str = Field(default="default", min_length=1, max_length=200)
    thread_id: str | None = Field(default=None, max_length=200)
    domain: str | None = Field(default=None, max_length=200)
    audio: AudioConfig = Field(default_factory=AudioConfig)
    # The project's file and folder names as the local runtime sees them (its
    # sandboxed list_dir of the root), so the very first turn's recogniser is
    # biased towards "README.md" before any tool has run (docs/protocol.md §2).
    project_names: list[Annotated[str, Field(max_length=MAX_NAME_CHARS)]] = Field(
        default_factory=list, max_length=MAX_PROJECT_NAMES
    )


class TextInput(_Msg):
    type: Literal["text.input"] = "text.input"
    text: str


McpStatus = Literal["success", "error", "rejected"]


class McpResponse(_Msg):
    """The seed's ``McpResponse``: the local runtime's single answer to a request."""

    type: Literal["mcp.response"] = "mcp.response"
    id: str = Field(min_length=1, max_length=200)
    status: McpStatus
    result: Any | None = None
    error: str | None = None
    code: str | None = None
    # SHA-256 of the local audit-log entry recording this answer, so the
    # engine's records can anchor the local hash chain (optional; may be ignored).
    audit_hash: str | None = Field(default=None, pattern=r"^[0-9a-f]{64}$")


class McpProgress(_Msg):
    type: Literal["mcp.progress"] = "mcp.progress"
    id: str = Field(min_length=1, max_length=200)
    stage: Literal["awaiting_approval", "running"]
    reason: str | None = None


class AudioPlayed(_Msg):
    type: Literal["audio.played"] = "audio.played"
    response_id: str
    played_ms: int = Field(ge=0)


class Interrupt(_Msg):
    type: Literal["interrupt"] = "interrupt"


class SessionEnd(_Msg):
    type: Literal["session.end"] = "session.end"


class Ping(_Msg):
    type: Literal["ping"] = "ping"
    id: str | int | None = None


HISTORY_MAX_LIMIT = 100


class ThreadHistoryRequest(_Msg):
    """Ask for the thread's earlier turns (docs/protocol.md, "Thread history"):
    the newest ``limit`` turns before ``before`` (a turn id from an earlier
    answer's ``next_before``), or the newest turns when ``before`` is absent."""

    type: Literal["thread.history"] = "thread.history"
    before: str | None = Field(default=None, min_length=1, max_length=200)
    limit: int = Field(default=20, ge=1, le=HISTORY_MAX_LIMIT)


ClientMessage = Annotated[
    SessionStart
    | TextInput
    | McpResponse
    | McpProgress
    | AudioPlayed
    | Interrupt
    | SessionEnd
    | Ping
    | ThreadHistoryRequest,
    Field(discriminator="type"),
]

# ---------------------------------------------------------- engine -> client

AssistantState = Literal["listening", "thinking", "speaking", "awaiting_approval", "running_tool"]


class ServerInfo(BaseModel):
    model_config = ConfigDict(frozen=True)
    version: str
    protocol: int


class LlmInfo(BaseModel):
    """Which language model answers: ``command-mode`` is the offline grammar (no
    model); ``models`` maps the router's tiers to concrete model ids."""

    model_config = ConfigDict(frozen=True)
    provider: str
    command_mode: bool
    models: dict[str, str] = Field(default_factory=dict)


class VoiceInfo(BaseModel):
    """The reply voice and every voice this engine can speak with."""

    model_config = ConfigDict(frozen=True)
    provider: str
    voice: str
    voices: list[str] = Field(default_factory=list)


class SessionReady(_Msg):
    type: Literal["session.ready"] = "session.ready"
    session_id: str
    thread_id: str
    user_id: str
    server: ServerInfo
    llm: LlmInfo | None = None
    voice: VoiceInfo | None = None


class State(_Msg):
    type: Literal["state"] = "state"
    value: AssistantState


class VadSpeechStart(_Msg):
    type: Literal["vad.speech_start"] = "vad.speech_start"
    t_ms: int


class VadSpeechEnd(_Msg):
    type: Literal["vad.speech_end"] = "vad.speech_end"
    t_ms: int


class TranscriptPartial(_Msg):
    type: Literal["transcript.partial"] = "transcript.partial"
    turn_id: str
    text: str


class TranscriptFinal(_Msg):
    type: Literal["transcript.final"] = "transcript.final"
    turn_id: str
    text: str


class AgentDelta(_Msg):
    """``transient: true`` marks words the engine speaks for the moment (the
    approval sentence) that are not part of the reply: ``agent.done.text`` and
    the stored thread leave them out, so a client drops them once decided."""

    type: Literal["agent.delta"] = "agent.delta"
    turn_id: str
    response_id: str
    text: str
    transient: bool | None = None


class AgentDone(_Msg):
    type: Literal["agent.done"] = "agent.done"
    turn_id: str
    response_id: str
    text: str
    model: str
    interrupted: bool


class AudioStart(_Msg):
    type: Literal["audio.start"] = "audio.start"
    response_id: str
    encoding: Encoding
    sample_rate: int


class AudioEnd(_Msg):
    type: Literal["audio.end"] = "audio.end"
    response_id: str
    duration_ms: int


class HaltAudio(_Msg):
    type: Literal["halt_audio"] = "halt_audio"
    response_id: str
    reason: Literal["barge_in", "interrupt"]
    t_ms: int


class ResumeAudio(_Msg):
    """A ``halt_audio`` (barge_in) judged a false interruption — a backchannel or
    noise: binary frames from now on are the same response's audio again, from
    ``from_ms`` of its timeline, as a fresh stream in ``encoding`` (docs/protocol.md §5.4)."""

    type: Literal["resume_audio"] = "resume_audio"
    response_id: str
    from_ms: int = Field(ge=0)
    encoding: Encoding
    sample_rate: Literal[24000] = 24000
    t_ms: int


McpAction = Literal["read_file", "execute_command", "list_dir", "write_file", "search_text"]


class McpRequest(_Msg):
    """The seed's ``McpRequest``. ``action`` is a plain string on the wire so the
    runtime can answer an unknown action with ``code: unknown_action`` instead of
    failing to parse the frame."""

    type: Literal["mcp.request"] = "mcp.request"
    id: str = Field(min_length=1, max_length=200)
    action: str
    payload: dict[str, Any] = Field(default_factory=dict)
    # sent during the user's pause, before the turn is confirmed (docs/protocol.md
    # §6): run it only if it needs nobody's approval, else refuse without asking
    speculative: bool | None = None


class Metrics(_Msg):
    model_config = ConfigDict(extra="allow", frozen=True)
    type: Literal["metrics"] = "metrics"
    turn_id: str
    stt_ms: int | None = None
    llm_ttft_ms: int | None = None
    tts_ttfb_ms: int | None = None
    e2e_ms: int | None = None
    engine_overhead_ms: int | None = None
    audio_ms: int | None = None


class Error(_Msg):
    type: Literal["error"] = "error"
    code: str
    message: str
    fatal: bool = False
    # at_capacity / going_away: wait this long before reconnecting (§2 close codes)
    retry_after_ms: int | None = Field(default=None, ge=0)


class Pong(_Msg):
    type: Literal["pong"] = "pong"
    id: str | int | None = None


class HistoryToolAction(BaseModel):
    """One MCP action of a stored turn, as its tool call and result recorded it."""

    model_config = ConfigDict(frozen=True)
    id: str
    action: str
    payload: dict[str, Any] = Field(default_factory=dict)
    status: McpStatus
    code: str | None = None
    summary: str
    detail: ActivityDetail | None = None


class HistoryTurn(BaseModel):
    """One stored turn. ``turn_id`` is the stored user message's id (stable across
    sessions; it need not equal the live ``turn_id`` of the session that made it).
    ``reply_text`` is what the assistant said; for an interrupted reply it is what
    was heard, and ``heard_text`` repeats it."""

    model_config = ConfigDict(frozen=True)
    turn_id: str
    user_text: str
    reply_text: str
    interrupted: bool = False
    heard_text: str | None = None
    tool_actions: list[HistoryToolAction] = Field(default_factory=list)


class ThreadHistory(_Msg):
    """The answer to ``thread.history``: turns oldest first; ``next_before`` is set
    when older turns exist (send it as ``before`` to page back)."""

    type: Literal["thread.history"] = "thread.history"
    thread_id: str
    before: str | None = None
    turns: list[HistoryTurn]
    next_before: str | None = None


ServerMessage = Annotated[
    SessionReady
    | State
    | VadSpeechStart
    | VadSpeechEnd
    | TranscriptPartial
    | TranscriptFinal
    | AgentDelta
    | AgentDone
    | AudioStart
    | AudioEnd
    | HaltAudio
    | ResumeAudio
    | McpRequest
    | Metrics
    | Error
    | Pong
    | ThreadHistory,
    Field(discriminator="type"),
]

_client_adapter: TypeAdapter[ClientMessage] = TypeAdapter(ClientMessage)
_server_adapter: TypeAdapter[ServerMessage] = TypeAdapter(ServerMessage)

CLIENT_TYPES = frozenset(
    m.model_fields["type"].default
    for m in (
        SessionStart,
        TextInput,
        McpResponse,
        McpProgress,
        AudioPlayed,
        Interrupt,
        SessionEnd,
        Ping,
        ThreadHistoryRequest,
    )
)


MAX_DEPTH = 32  # no message of ours nests deeper than a few levels
_SURROGATE = re.compile("[\ud800-\udfff]")


def _check_tree(obj: Any) -> None:
    """Reject what JSON allows but a message must not carry: nesting deeper than
    :data:`MAX_DEPTH` (it would exhaust recursion in validation or the echo)
    and lone surrogates (``"\\ud800"`` parses to a ``str`` that cannot be
    encoded back to UTF-8). Iterative, so depth costs no stack."""
    stack: list[tuple[Any, int]] = [(obj, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, dict):
            items: list[Any] = [*node.keys(), *node.values()]
        elif isinstance(node, list):
            items = node
        else:
            if isinstance(node, str) and _SURROGATE.search(node):
                raise ProtocolError(
                    "invalid_message", "text holds a lone surrogate (not valid Unicode)"
                )
            continue
        if depth > MAX_DEPTH:
            raise ProtocolError("invalid_json", f"JSON nested deeper than {MAX_DEPTH} levels")
        stack.extend((x, depth + 1) for x in items)


def _decode(raw: str | bytes) -> dict[str, Any]:
    try:
        obj = json.loads(raw)
    except RecursionError as exc:  # the C parser's own bound on nesting
        raise ProtocolError("invalid_json", f"JSON nested deeper than {MAX_DEPTH} levels") from exc
    except (ValueError, UnicodeDecodeError) as exc:
        raise ProtocolError("invalid_json", f"text frame is not valid JSON: {exc}") from exc
    _check_tree(obj)
    if not isinstance(obj, dict):
        raise ProtocolError("invalid_message", "a text frame must hold one JSON object")
    if not isinstance(obj.get("type"), str):
        raise ProtocolError("invalid_message", "message has no string field 'type'")
    return obj


def _validate(adapter: TypeAdapter[Any], obj: dict[str, Any]) -> Any:
    try:
        return adapter.validate_python(obj)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"][1:]) or first["loc"][0]
        raise ProtocolError(
            "invalid_message", f"bad '{obj['type']}' message: {where}: {first['msg']}"
        ) from exc


def parse_client(raw: str | bytes) -> ClientMessage:
    """Parse one client text frame; raise :class:`ProtocolError` on anything invalid."""
    obj = _decode(raw)
    if obj["type"] not in CLIENT_TYPES:
        raise ProtocolError("unknown_type", f"unknown message type {obj['type']!r}")
    return cast(ClientMessage, _validate(_client_adapter, obj))


def parse_server(raw: str | bytes) -> ServerMessage:
    """Parse one engine text frame (used by the local runtime and the tests)."""
    obj = _decode(raw)
    return cast(ServerMessage, _validate(_server_adapter, obj))
