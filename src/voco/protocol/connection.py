"""Sans-I/O core of one engine-side session connection (protocol §1, §2, §7).

Frames in, events out; no sockets, no clocks (callers pass ``now``). It owns the
rules that do not depend on what the assistant is doing: the ``session.start``
handshake, frame limits, which violations are fatal, the abuse limit, and PCM
re-chunking with stream time. The asyncio adapter in :mod:`voco.engine.server`
only moves bytes and acts on the events, so all of this is tested without a
socket.
"""

from __future__ import annotations

import enum
from collections import deque
from dataclasses import dataclass

from voco.audio.pcm import OddLengthError, Rechunker
from voco.protocol.messages import (
    ClientMessage,
    ProtocolError,
    SessionStart,
    TextInput,
    parse_client,
)

MAX_TEXT_FRAME = 1 << 20  # protocol §7: larger text frames close with 1009
MAX_AUDIO_FRAME = 64 * 1024  # 2 s of PCM in one frame is plenty; larger is dropped
# What the WebSocket layer accepts at all: above the text limit, so an oversized
# text frame is closed 1009 here and an oversized audio frame gets its non-fatal
# error; only frames beyond this (4 MiB) are cut off by the transport itself.
MAX_WS_FRAME = 4 << 20
MAX_TEXT_INPUT_CHARS = 10_000
VIOLATION_LIMIT = 100
VIOLATION_WINDOW_S = 10.0
START_TIMEOUT_S = 5.0


class CloseCode(enum.IntEnum):
    PROTOCOL_ERROR = 4400
    UNAUTHENTICATED = 4401
    NO_SEAT = 4402
    FORBIDDEN = 4403
    START_TIMEOUT = 4408
    RATE_LIMITED = 4429
    AT_CAPACITY = 4503
    GOING_AWAY = 1012
    MESSAGE_TOO_BIG = 1009
    INTERNAL = 1011
    NORMAL = 1000


class Phase(enum.Enum):
    AWAITING_START = "awaiting_start"
    AUTHENTICATING = "authenticating"
    READY = "ready"
    CLOSED = "closed"


@dataclass(frozen=True)
class StartRequested:
    message: SessionStart


@dataclass(frozen=True)
class MessageReceived:
    message: ClientMessage


@dataclass(frozen=True)
class AudioReceived:
    frames: list[bytes]  # whole 512-sample frames, in order
    first_frame_index: int  # index of frames[0] in the stream
    t_ms: int  # stream time after this chunk


@dataclass(frozen=True)
class SendError:
    code: str
    message: str
    fatal: bool = False
    retry_after_ms: int | None = None


@dataclass(frozen=True)
class Close:
    code: int
    reason: str


Event = StartRequested | MessageReceived | AudioReceived | SendError | Close


class ServerConnection:
    def __init__(self) -> None:
        self.phase = Phase.AWAITING_START
        self.rechunker = Rechunker()
        self._violations: deque[float] = deque()

    # ------------------------------------------------------------- handshake

    def start_deadline_passed(self) -> list[Event]:
        """The adapter's 5 s timer fired."""
        if self.phase is Phase.AWAITING_START:
            return self._fatal(
                CloseCode.START_TIMEOUT, "start_timeout", "no session.start within 5 s"
            )
        return []

    def start_accepted(self) -> None:
        self.phase = Phase.READY

    def start_refused(
        self, code: int, error: str, message: str, retry_after_ms: int | None = None
    ) -> list[Event]:
        return self._fatal(code, error, message, retry_after_ms)

    # ----------------------------------------------------------------- frames

    def receive_text(self, data: str | bytes, now: float) -> list[Event]:
        if self.phase is Phase.CLOSED:
            return []
        if len(data) > MAX_TEXT_FRAME:
            self.phase = Phase.CLOSED
            return [Close(CloseCode.MESSAGE_TOO_BIG, "text frame larger than 1 MiB")]
        try:
            msg = parse_client(data)
        except ProtocolError as exc:
            return self._violation(exc.code, exc.message, now)
        if self.phase is Phase.AWAITING_START:
            if not isinstance(msg, SessionStart):
                return self._fatal(
                    CloseCode.PROTOCOL_ERROR,
                    "protocol_error",
                    f"first message must be session.start, got {msg.type}",
                )
            self.phase = Phase.AUTHENTICATING
            return [StartRequested(msg)]
        if self.phase is Phase.AUTHENTICATING:
            return self._violation("protocol_error", "wait for session.ready", now)
        if isinstance(msg, SessionStart):
            return self._violation("protocol_error", "session already started", now)
        if isinstance(msg, TextInput) and not msg.text.strip():
            # Nothing to answer: no turn starts and nothing playing is cut
            # (like a silent utterance). Not a violation: a client may send it.
            return [SendError("empty_text", "text.input has no text; nothing to answer")]
        if isinstance(msg, TextInput) and len(msg.text) > MAX_TEXT_INPUT_CHARS:
            return [
                SendError(
                    "too_large",
                    f"text.input has {len(msg.text)} characters; the limit is "
                    f"{MAX_TEXT_INPUT_CHARS}",
                )
            ]
        return [MessageReceived(msg)]

    def receive_bytes(self, data: bytes, now: float) -> list[Event]:
        if self.phase is Phase.CLOSED:
            return []
        if self.phase is not Phase.READY:
            return self._fatal(
                CloseCode.PROTOCOL_ERROR, "protocol_error", "audio before session.start"
            )
        if len(data) > MAX_AUDIO_FRAME:
            return self._violation(
                "audio_too_large",
                f"audio frame of {len(data)} bytes dropped; the limit is {MAX_AUDIO_FRAME}",
                now,
            )
        first = self.rechunker.frames_emitted
        try:
            frames = self.rechunker.feed(data)
        except OddLengthError as exc:
            return self._violation("odd_audio_length", f"{exc}; frame dropped", now)
        return [AudioReceived(frames, first, self.rechunker.t_ms)] if frames else []

    def receive_audio(self, data: bytes) -> list[bytes] | None:
        """The fast lane's :meth:`receive_bytes` for the plain case only: a
        started session's audio within the limits, re-chunked. ``None`` for
        anything else (before start, too large, odd length, closed): the
        caller then takes :meth:`receive_bytes`, which says why — so both
        paths close and report exactly alike."""
        if self.phase is not Phase.READY or len(data) > MAX_AUDIO_FRAME or len(data) % 2:
            return None
        return self.rechunker.feed(data)

    def record_violation(self, code: str, message: str, now: float) -> list[Event]:
        """A violation found above this layer (e.g. unknown mcp.response id)."""
        return self._violation(code, message, now)

    # ---------------------------------------------------------------- helpers

    def _violation(self, code: str, message: str, now: float) -> list[Event]:
        if self.phase is not Phase.READY:
            return self._fatal(CloseCode.PROTOCOL_ERROR, code, message)
        self._violations.append(now)
        while self._violations and now - self._violations[0] > VIOLATION_WINDOW_S:
            self._violations.popleft()
        if len(self._violations) > VIOLATION_LIMIT:
            return self._fatal(
                CloseCode.PROTOCOL_ERROR,
                "too_many_errors",
                f"more than {VIOLATION_LIMIT} protocol errors in {VIOLATION_WINDOW_S:.0f} s",
            )
        return [SendError(code, message)]

    def _fatal(
        self, close: int, code: str, message: str, retry_after_ms: int | None = None
    ) -> list[Event]:
        self.phase = Phase.CLOSED
        return [SendError(code, message, True, retry_after_ms), Close(close, message[:120])]
