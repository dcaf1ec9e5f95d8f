"""The small interfaces every provider implements.

Why so small: the engine must be able to swap a local model for a cloud API (and
a hand-written fake in tests) without a single ``if provider == ...`` in the
session code. Anything provider-specific stays inside the implementation.

Conventions shared by all providers:

* Audio crossing these interfaces is raw PCM, signed 16-bit little-endian, mono.
  STT input is always 16 kHz; TTS output is at ``TTS.sample_rate``.
* Failures surface as :class:`ProviderError` (never a vendor exception), so the
  session can answer with a non-fatal ``error`` and a spoken apology.
* Cancellation is plain asyncio cancellation: an implementation must release its
  network resources (and tell the vendor, where the vendor supports it) when the
  task consuming it is cancelled.
"""

from __future__ import annotations

import abc
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal


class ProviderError(Exception):
    """A provider failed (connect refused, timeout, 5xx, stream dropped, bad reply).

    ``provider`` names the implementation, ``retryable`` says whether a retry or a
    fallback provider may succeed.
    """

    def __init__(self, provider: str, message: str, *, retryable: bool = True) -> None:
        super().__init__(f"{provider}: {message}")
        self.provider = provider
        self.message = message
        self.retryable = retryable


# ---------------------------------------------------------------------------- STT


@dataclass(frozen=True)
class STTCapabilities:
    streaming: bool  # audio is sent while the user speaks (not only at the end)
    interim_results: bool  # emits partial transcripts
    # ``open_stream(vocabulary=...)`` biases recognition towards those names
    # (Whisper: prompt; Deepgram: keyterms). False: the session never passes it.
    vocabulary: bool = False


PartialCallback = Callable[[str], Awaitable[None]]


class SpeechStream(abc.ABC):
    """One utterance being transcribed.

    The engine pushes 16 kHz PCM while VAD says the user is speaking, then calls
    :meth:`finish` at end of speech and awaits the final text. A batch model just
    buffers; a streaming service transcribes as audio arrives, so ``finish`` is
    cheap.
    """

    @abc.abstractmethod
    async def push(self, pcm: bytes) -> None: ...

    @abc.abstractmethod
    async def finish(self) -> str:
        """End of utterance: return the final transcript (may be empty)."""

    @abc.abstractmethod
    async def aclose(self) -> None:
        """Abandon the utterance (barge-in, disconnect); idempotent."""

    async def preview(self) -> str | None:
        """Transcribe the audio pushed so far without ending the utterance.

        Called when the user pauses, so a batch model's work overlaps the
        end-of-turn silence; if the user stays silent, the session uses this
        text instead of calling :meth:`finish`. ``None``: not supported
        (streaming services are already up to date).
        """
        return None


class STT(abc.ABC):
    name: str
    capabilities: STTCapabilities

    @abc.abstractmethod
    async def open_stream(
        self, on_partial: PartialCallback | None = None, *, vocabulary: Sequence[str] = ()
    ) -> SpeechStream:
        """One utterance. ``vocabulary``: the project's names, most useful first
        (only passed when ``capabilities.vocabulary``; the provider caps it)."""

    async def warmup(self) -> None:  # noqa: B027 - optional hook
        """Load models / open pools ahead of the first turn."""

    async def aclose(self) -> None:  # noqa: B027 - optional hook
        """Release process-wide resources."""


# ---------------------------------------------------------------------------- TTS


@dataclass(frozen=True)
class TTSCapabilities:
    streaming: bool  # first audio arrives before the whole clause is synthesized


class TTS(abc.ABC):
    name: str
    capabilities: TTSCapabilities
    sample_rate: int  # of the PCM this provider yields

    @abc.abstractmethod
    def synthesize(self, text: str) -> AsyncIterator[bytes]:
        """Yield PCM16 mono chunks at :attr:`sample_rate` for one clause of text."""

    async def warmup(self) -> None:  # noqa: B027 - optional hook
        """Load models / open connections ahead of the first turn."""

    async def aclose(self) -> None:  # noqa: B027 - optional hook
        """Release process-wide resources."""


# ---------------------------------------------------------------------------- LLM

Role = Literal["user", "assistant", "tool"]


@dataclass(frozen=True)
class ToolCall:
    id: str
    name: str
    arguments: dict[str, Any]


@dataclass(frozen=True)
class ChatMessage:
    """Provider-neutral chat message.

    ``tool`` messages carry the result of one tool call (``tool_call_id``);
    ``assistant`` messages may carry ``tool_calls``. ``interrupted`` marks an
    assistant reply the user cut off (its ``content`` is what was heard).
    """

    role: Role
    content: str = ""
    tool_calls: tuple[ToolCall, ...] = ()
    tool_call_id: str | None = None
    is_error: bool = False
    interrupted: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {
            "role": self.role,
            "content": self.content,
            "tool_calls": [
                {"id": c.id, "name": c.name, "arguments": c.arguments} for c in self.tool_calls
            ],
            "tool_call_id": self.tool_call_id,
            "is_error": self.is_error,
            "interrupted": self.interrupted,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ChatMessage:
        return cls(
            role=d["role"],
            content=d.get("content", ""),
            tool_calls=tuple(
                ToolCall(c["id"], c["name"], dict(c["arguments"])) for c in d.get("tool_calls", ())
            ),
            tool_call_id=d.get("tool_call_id"),
            is_error=bool(d.get("is_error", False)),
            interrupted=bool(d.get("interrupted", False)),
        )


@dataclass(frozen=True)
class ToolSpec:
    """A tool the model may call; ``parameters`` is a JSON schema object."""

    name: str
    description: str
    parameters: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class TextDelta:
    text: str


@dataclass(frozen=True)
class ToolCallEvent:
    call: ToolCall


@dataclass(frozen=True)
class Finished:
    stop_reason: str  # "end_turn" | "tool_use" | "max_tokens" | ...
    model: str  # the concrete model id that answered
    # tokens of this call as the provider reports them (billed per model:
    # voco.billing.meters); 0 where it reports none — never an estimate
    input_tokens: int = 0
    output_tokens: int = 0


@dataclass(frozen=True)
class FallbackUsed:
    """A fallback chain switched providers before any output (the user must be
    told: a fallback must never hide a failure)."""

    primary: str
    fallback: str
    reason: str


LLMEvent = TextDelta | ToolCallEvent | Finished | FallbackUsed


@dataclass(frozen=True)
class LLMCapabilities:
    tool_calling: bool
    streaming: bool


class LLM(abc.ABC):
    """A chat model with streaming and tool calls.

    ``tier`` is what the model router picked (``"sonnet"`` for complex reasoning,
    ``"haiku"`` for quick turns); each provider maps a tier to its own model id.
    """

    name: str
    capabilities: LLMCapabilities

    @abc.abstractmethod
    def stream(
        self,
        *,
        system: str,
        messages: list[ChatMessage],
        tools: list[ToolSpec],
        tier: str,
    ) -> AsyncIterator[LLMEvent]: ...

    def model_id(self, tier: str) -> str:
        """The concrete model id used for ``tier`` (reported in ``agent.done.model``)."""
        return f"{self.name}:{tier}"

    async def aclose(self) -> None:  # noqa: B027 - optional hook
        """Release clients / connection pools."""
