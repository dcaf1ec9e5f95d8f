"""Wire models of the local UI protocol (docs/ui-protocol.md: page ↔ runtime).

The page speaks a superset of the engine protocol: a few engine messages it
sends are relayed as they are (``text.input``, ``interrupt``, ``audio.played``,
``ping``, ``thread.history``), and the runtime adds its own both ways. All of
them are typed here, in one place beside :mod:`voco.protocol.messages`; the
page's TypeScript types are generated from these models' JSON Schema
(``scripts/gen_ts_types.py``), so the two cannot drift.
"""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal

from pydantic import Field, StrictBool, TypeAdapter, ValidationError

from voco.protocol import messages as m
from voco.protocol.activity import ActivityDetail

ApproveMode = Literal["ask", "deny", "all"]
# What a page may switch to: never "all" (auto-approve can only be chosen on
# the command line by the person who started the runtime).
PageApproveMode = Literal["ask", "deny"]
# "reconnecting": the engine went away (drain, crash, at capacity) and the
# runtime is waiting ``retry_in_ms`` before attempt ``attempt`` to resume the thread
EngineLink = Literal["connecting", "connected", "reconnecting", "disconnected"]
ActivityStage = Literal["requested", "awaiting_approval", "running", "done"]

# Close code of /ui when the link's secret is wrong or stale: the page stops
# retrying and says to open the newest link (4401 = the engine's "unauthenticated").
CLOSE_BAD_SECRET = 4401


class _Ui(m._Msg):
    """A /ui message: unknown fields ignored, declared ones validated."""


# ------------------------------------------------------------ page -> runtime


class ApprovalDecision(_Ui):
    type: Literal["approval.decision"] = "approval.decision"
    id: str = Field(min_length=1, max_length=200)
    approve: StrictBool  # a string "true" is not a yes


class SessionRestart(_Ui):
    type: Literal["session.restart"] = "session.restart"


class SettingsUpdate(_Ui):
    """Change how risky actions are decided, from the page's settings panel."""

    type: Literal["settings.update"] = "settings.update"
    approve: PageApproveMode


BrowserMessage = Annotated[
    m.TextInput
    | m.Interrupt
    | m.AudioPlayed
    | m.Ping
    | m.ThreadHistoryRequest
    | ApprovalDecision
    | SessionRestart
    | SettingsUpdate,
    Field(discriminator="type"),
]
BROWSER_MODELS: tuple[type[m._Msg], ...] = (
    m.TextInput,
    m.Interrupt,
    m.AudioPlayed,
    m.Ping,
    m.ThreadHistoryRequest,
    ApprovalDecision,
    SessionRestart,
    SettingsUpdate,
)
RELAYED_TO_ENGINE: tuple[type[m._Msg], ...] = BROWSER_MODELS[:5]

# ------------------------------------------------------------ runtime -> page


class RuntimeStatus(_Ui):
    type: Literal["runtime.status"] = "runtime.status"
    engine: EngineLink
    roots: list[str]
    approve: ApproveMode
    approve_choices: list[ApproveMode] = Field(default_factory=list)
    message: str | None = None
    attempt: int | None = None  # with "reconnecting": which retry is next (1, 2, …)
    retry_in_ms: int | None = None  # with "reconnecting": when it starts


class Activity(_Ui):
    """One MCP action, updated as it progresses; ``detail`` comes with ``done``.

    ``status`` is the runtime's verdict for the person: a command that exits
    non-zero is ``error`` (code ``exit_status``) even though the engine got a
    successful ``mcp.response`` carrying the exit code.
    """

    type: Literal["activity"] = "activity"
    id: str
    stage: ActivityStage
    action: str | None = None
    payload: dict[str, Any] | None = None
    display: str | None = None  # the action in one escaped line (sandbox.display)
    status: m.McpStatus | None = None
    code: str | None = None
    summary: str | None = None
    reason: str | None = None
    detail: ActivityDetail | None = None
    restored: bool | None = None  # rebuilt from the thread's history, not live


class ApprovalRequest(_Ui):
    type: Literal["approval.request"] = "approval.request"
    id: str
    action: str
    payload: dict[str, Any]
    display: str | None = None  # the action in one escaped line (sandbox.display)
    reason: str
    roots: list[str]


class ApprovalClosed(_Ui):
    type: Literal["approval.closed"] = "approval.closed"
    id: str
    approved: bool


class TurnResumed(_Ui):
    """What became of a typed turn the engine went away from (drain, crash)
    before its ``agent.done``, decided from the resumed thread's stored turns:
    ``answered`` (it had finished: ``reply``, shown by the ``thread.history``
    just sent), ``resent`` (sent again, once, to the new engine: its
    ``transcript.final`` follows), ``lost`` (it was already a re-send: not
    looped; the person sends it again). ``turn_id``: the live turn id it had,
    when a ``transcript.final`` named it before the loss."""

    type: Literal["turn.resumed"] = "turn.resumed"
    text: str
    outcome: Literal["answered", "resent", "lost"]
    turn_id: str | None = None
    reply: str | None = None


RUNTIME_MODELS: tuple[type[m._Msg], ...] = (
    RuntimeStatus,
    Activity,
    ApprovalRequest,
    ApprovalClosed,
    TurnResumed,
)
# Engine messages the runtime relays to the page unchanged (all but mcp.request).
ENGINE_TO_PAGE: tuple[type[m._Msg], ...] = (
    m.SessionReady,
    m.State,
    m.VadSpeechStart,
    m.VadSpeechEnd,
    m.TranscriptPartial,
    m.TranscriptFinal,
    m.AgentDelta,
    m.AgentDone,
    m.AudioStart,
    m.AudioEnd,
    m.HaltAudio,
    m.ResumeAudio,
    m.Metrics,
    m.Error,
    m.Pong,
    m.ThreadHistory,
)
PAGE_MODELS = ENGINE_TO_PAGE + RUNTIME_MODELS

_browser_adapter: TypeAdapter[BrowserMessage] = TypeAdapter(BrowserMessage)
BROWSER_TYPES = frozenset(x.model_fields["type"].default for x in BROWSER_MODELS)


def parse_browser(raw: str | bytes) -> BrowserMessage:
    """Parse one text frame from the page; :class:`~voco.protocol.messages.ProtocolError`
    (``invalid_json``, ``invalid_message``, ``unknown_type``) on anything else."""
    try:
        obj = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise m.ProtocolError("invalid_json", f"text frame is not valid JSON: {exc}") from exc
    if not isinstance(obj, dict) or not isinstance(obj.get("type"), str):
        raise m.ProtocolError("invalid_message", "expected a JSON object with 'type'")
    if obj["type"] not in BROWSER_TYPES:
        raise m.ProtocolError("unknown_type", f"unknown message type {obj['type']!r}")
    try:
        return _browser_adapter.validate_python(obj)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"][1:]) or str(first["loc"][0])
        raise m.ProtocolError(
            "invalid_message", f"bad '{obj['type']}' message: {where}: {first['msg']}"
        ) from exc
