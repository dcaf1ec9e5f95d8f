"""What a graph run needs from its session but must never checkpoint.

The graph reaches the outside world only through these two ports: the model's
streamed words go out through :class:`Emitter`, tool calls go to the local
runtime through :class:`McpPort` (which owns the seed's ``pending_rpc_futures``).
The session implements both; tests implement them by hand.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass
from typing import Any

from voco.providers.base import LLM


@dataclass(frozen=True)
class McpOutcome:
    status: str  # success | error | rejected
    result: Any = None
    error: str | None = None
    code: str | None = None


class McpPort(abc.ABC):
    @abc.abstractmethod
    async def call(self, call_id: str, action: str, payload: dict[str, Any]) -> McpOutcome:
        """Send one ``mcp.request`` and wait for its answer (never raises for
        timeouts or a lost runtime: those come back as ``error`` outcomes)."""


class Emitter(abc.ABC):
    @abc.abstractmethod
    async def text(self, text: str) -> None:
        """A piece of the reply: shown (``agent.delta``) and spoken."""

    async def model_selected(self, model: str, reasons: tuple[str, ...]) -> None:  # noqa: B027
        """The router's decision for this turn (for ``agent.done.model`` and logs)."""

    async def model_answered(self, model: str) -> None:  # noqa: B027
        """The model that really answered (a fallback's, when one took over)."""

    async def model_usage(self, model: str, input_tokens: int, output_tokens: int) -> None:  # noqa: B027
        """Tokens one model call used, as its provider reported them (the turn
        sums them per model into its usage rows)."""

    async def error(self, code: str, message: str) -> None:  # noqa: B027
        """A non-fatal failure the client should see (the session goes on)."""


@dataclass
class AgentContext:
    llm: LLM
    emitter: Emitter
    mcp: McpPort
    system_prompt: str
    max_steps: int = 8
