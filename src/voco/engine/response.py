"""One response's handles: its turn, its lifecycle, its task, and the port
through which the graph's words reach the user.

Apart from :mod:`voco.engine.session` so the session file is only the adapter.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from voco.agent.context import Emitter
from voco.engine.lifecycle import ResponseLifecycle
from voco.engine.playout import ResponseAudio
from voco.engine.prefetch import Prefetch
from voco.engine.record import Turn
from voco.engine.speaker import Speaker
from voco.engine.tool_log import RecordingPort
from voco.protocol import messages as m


@dataclass
class Response:
    turn: Turn
    response_id: str
    life: ResponseLifecycle
    reply_msg_id: str
    task: asyncio.Task[None] | None = None
    emitter: ResponseEmitter | None = None
    tools: RecordingPort | None = None  # what each MCP request became (the store's record)
    prefetch: Prefetch | None = None  # the reply prepared during the pause, if it fits
    done_at: float | None = None  # clock time of its (last) agent.done
    speaker: Speaker | None = None  # set when its audio can be halted and resumed

    @property
    def audio(self) -> ResponseAudio:
        return self.life.audio


class ResponseEmitter(Emitter):
    """The graph's port to this response: text is shown, spoken and timed."""

    def __init__(
        self,
        resp: Response,
        speaker: Speaker,
        *,
        send: Callable[[m._Msg], Awaitable[None]],
        clock: Callable[[], float],
    ) -> None:
        self._r = resp
        self._speaker = speaker
        self._send = send
        self._clock = clock
        # model -> (input, output) tokens of this response's model calls (billed)
        self.tokens: dict[str, tuple[int, int]] = {}

    async def _out(self, text: str, *, from_model: bool) -> None:
        r = self._r
        r.life.on_text(text, self._clock(), from_model=from_model)
        await self._send(m.AgentDelta(turn_id=r.turn.turn_id, response_id=r.response_id, text=text))

    async def text(self, text: str) -> None:
        await self._out(text, from_model=True)
        self._speaker.feed(text)

    async def transient(self, text: str) -> None:
        """Spoken now, shown while it matters, never part of the reply's text
        (the approval sentence: once decided, it is no longer true)."""
        r = self._r
        await self._send(
            m.AgentDelta(
                turn_id=r.turn.turn_id, response_id=r.response_id, text=text, transient=True
            )
        )
        self._speaker.feed(text)

    async def say(self, sentence: str) -> None:
        """A sentence of the engine's own (not the model's): shown and spoken now."""
        await self._out(sentence, from_model=False)
        self._speaker.say(sentence)

    async def model_selected(self, model: str, reasons: tuple[str, ...]) -> None:
        self._r.life.on_model(model)

    async def model_answered(self, model: str) -> None:
        self._r.life.on_model(model)

    async def model_usage(self, model: str, input_tokens: int, output_tokens: int) -> None:
        tin, tout = self.tokens.get(model, (0, 0))
        self.tokens[model] = (tin + input_tokens, tout + output_tokens)

    async def error(self, code: str, message: str) -> None:
        await self._send(m.Error(code=code, message=message))
