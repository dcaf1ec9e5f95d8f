"""What a response leaves behind, each sent or stored in one place: its
``agent.done`` (:meth:`ResponseOutcomes._finish_response`), its ``metrics``
(:meth:`~ResponseOutcomes._send_metrics`) and its turn record
(:meth:`~ResponseOutcomes._take_end`, once the reply's audio has ended).

A part of :class:`~voco.engine.session.Session`, in a file of its own so the
session file stays the adapter of a conversation: these methods are the
session's (a mixin), and the attributes declared below are the session's too.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from voco.engine.ending import timings_of, turn_record
from voco.engine.lifecycle import Done
from voco.engine.response import Response
from voco.engine.runtime import EngineRuntime
from voco.engine.speaker import Speaker
from voco.engine.turn_timeline import breakdown
from voco.protocol import messages as m
from voco.store.tenancy import SessionGrant


class ResponseOutcomes:
    rt: EngineRuntime
    session_id: str
    thread_id: str
    clock: Callable[[], float]
    grant: SessionGrant
    _unended: dict[str, Response]  # responses whose end is not yet recorded

    async def send(self, msg: m._Msg) -> None:
        raise NotImplementedError

    def _spawn(self, coro: Awaitable[Any]) -> None:
        raise NotImplementedError

    async def _finish_response(self, resp: Response, done: Done | None) -> None:
        """The one place a response's ``agent.done`` is sent — finished or cut.

        Not where its turn is recorded: reply audio still plays after it, so the
        record waits for the response's end (:meth:`_take_end`). ``done`` is None
        when the lifecycle has nothing to say (already cut).
        """
        if done is None:
            return
        resp.done_at = self.clock()
        await self.send(
            m.AgentDone(
                turn_id=resp.turn.turn_id,
                response_id=resp.response_id,
                text=done.text,
                model=done.model,
                interrupted=done.interrupted,
            )
        )

    def _take_end(self, resp: Response, *, now: bool = False) -> bool:
        """If the response has ended (``now``: end it, the session closes),
        record its turn — the one place it is recorded. True once ended."""
        end = resp.life.conclude(self.clock()) if now else resp.life.take_end(self.clock())
        if end is not None:
            self._unended.pop(resp.response_id, None)
            if not end.joined:  # a joined turn goes on in the next response
                self.grant.record_turn(turn_record(resp, end, self.clock()))
            if self.rt.tracer is not None:
                self.rt.tracer.ended(self.session_id, self.thread_id, resp, end, self.clock())
        return resp.response_id not in self._unended

    def _end_or_watch(self, resp: Response) -> None:
        if not self._take_end(resp):
            self._spawn(self._watch_end(resp))

    async def _watch_end(self, resp: Response) -> None:
        # the end is a deadline on the clock (played out, or the wait for
        # audio.played after a halt), or an audio.played: poll it coarsely
        while not self._take_end(resp):  # noqa: ASYNC110 (a deadline, not an event)
            await asyncio.sleep(0.05)

    async def _send_metrics(self, resp: Response, speaker: Speaker) -> None:
        # one set of readings for the message, /metrics and the turn's span
        timings = timings_of(resp, speaker.first_clause_at, speaker.first_audio_at)
        fields = timings.wire_fields()
        await self.send(
            m.Metrics(turn_id=resp.turn.turn_id, audio_ms=resp.audio.sent_ms, **fields)  # type: ignore[arg-type]
        )
        observed = timings.observed()
        pre = resp.prefetch  # off the wire too: where the turn end's time went
        observed.update(
            breakdown(
                resp.turn.timeline,
                spec_at=None if pre is None else pre.started_at,
                spec_audio_at=None if pre is None else pre.first_pcm_at,
                released_at=speaker.first_audio_at,
            )
        )
        for observe in self.rt.turn_observers:
            observe(observed)
        if self.rt.tracer is not None:
            self.rt.tracer.stages(resp.response_id, timings)
