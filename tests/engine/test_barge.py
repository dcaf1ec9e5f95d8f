"""The tentative-halt adapter (engine/barge.py) with a hand-written host and a
fake clock, no sockets: which verdict it carries out, and whether an
utterance's final words are a turn of their own."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import Any

from voco.engine.barge import BargeHost, TentativeHalts, echo_reference
from voco.engine.lifecycle import Cut, ResponseLifecycle
from voco.engine.playout import ResponseAudio
from voco.engine.record import Turn
from voco.engine.response import Response


class Host(BargeHost):
    def __init__(self) -> None:
        self.response: Response | None = None
        self.done: list[str] = []
        self.decided = asyncio.Event()
        self.quiet_ms = 0
        self.voice_end_ms = 0
        self.asked: list[asyncio.Future[str | None]] = []
        self.wanted = asyncio.Event()  # the words were asked for

    async def resume_reply(self, resp: Response) -> None:
        self.done.append("resume")
        self.decided.set()

    async def confirm_cut(self, resp: Response) -> None:
        self.done.append("cut")
        self.decided.set()

    async def halt_again(self) -> None:
        self.done.append("halt again")

    def user_in_speech(self) -> bool:
        return False

    def user_quiet_ms(self) -> int:
        return self.quiet_ms

    def user_voice_end_ms(self) -> int:
        return self.voice_end_ms

    def words_now(self) -> Awaitable[str | None] | None:
        fut: asyncio.Future[str | None] = asyncio.get_running_loop().create_future()
        self.asked.append(fut)
        self.wanted.set()
        return fut


def rig() -> tuple[Host, TentativeHalts, Response, list[Awaitable[Any]]]:
    host, spawned = Host(), []
    halts = TentativeHalts(host, clock=lambda: 102.0, spawn=spawned.append)
    life = ResponseLifecycle(ResponseAudio("r1"), started_at=100.0)
    life.on_text("one two three four", 101.0)
    life.on_audio_start(101.0)
    life.audio.begin_clause("one two three four")
    life.audio.add_audio(4000)
    resp = Response(Turn("t1", "u1", "hi"), "r1", life, reply_msg_id="m1")
    host.response = resp
    assert life.cut_plan(Cut.SPEECH, 102.0, tentative=True).halt == "barge_in"
    assert halts.begin(resp) and halts.pending()
    return host, halts, resp, spawned


async def close(spawned: list[Awaitable[Any]]) -> None:
    for c in spawned:  # the watchers were never started: close them quietly
        c.close()  # type: ignore[attr-defined]


async def test_a_backchannel_resumes_and_its_final_words_are_no_turn() -> None:
    host, halts, _, spawned = rig()
    assert not halts.may_prepare()  # undecided: nothing is prepared for it
    await halts.words("mhm", final=False)
    assert host.done == ["resume"] and not halts.pending()
    assert await halts.words("Mhm.", final=True)  # swallowed: no turn
    await close(spawned)


async def test_real_final_words_after_a_resume_are_a_turn_of_their_own() -> None:
    host, halts, _, spawned = rig()
    await halts.words("", final=False)  # nothing intelligible yet: resumed
    assert host.done == ["resume"]
    # the recogniser's final word was "stop": a turn, which cuts the reply
    assert not await halts.words("Stop.", final=True)
    await close(spawned)


async def test_real_words_confirm_the_cut() -> None:
    host, halts, _, spawned = rig()
    await halts.words("wait", final=False)
    assert host.done == ["cut"]
    assert not await halts.words("Wait, open the tests.", final=True)
    await close(spawned)


async def test_a_cut_plan_that_confirms_the_halt_ends_the_judging() -> None:
    host, halts, resp, spawned = rig()
    resp.life.cut_plan(Cut.INTERRUPT, 102.1)  # an interrupt while being judged
    assert not halts.begin(resp) and not halts.pending()
    await halts.words("mhm", final=False)  # too late to resume anything
    assert host.done == []
    await close(spawned)


async def test_speech_resumed_after_a_resume_halts_again() -> None:
    host, halts, _, spawned = rig()
    await halts.words("okay", final=False)
    await halts.speech_resumed()  # "okay… now open the tests"
    assert host.done == ["resume", "halt again"]
    await close(spawned)


async def test_the_replys_own_echo_resumes_and_is_no_turn() -> None:
    host, halts, resp, spawned = rig()  # halted 1 s into "one two three four"
    assert echo_reference(resp, 102.0) == ["one"]  # what played, and a little past
    await halts.words("One.", final=False)
    assert host.done == ["resume"]
    assert await halts.words("one", final=True)
    await close(spawned)


async def watched(halts: TentativeHalts, spawned: list[Any]) -> asyncio.Task[Any]:
    """Run the halt's watcher (the first spawned coroutine) and everything it spawns."""
    loop = asyncio.get_running_loop()
    watcher = loop.create_task(spawned.pop(0))
    halts._spawn = lambda c: spawned.append(loop.create_task(c))
    return watcher


async def test_the_words_are_asked_for_at_a_short_quiet_and_a_backchannel_resumes() -> None:
    host, halts, _, spawned = rig()
    watcher = await watched(halts, spawned)
    host.quiet_ms, host.voice_end_ms = 96, 480  # the "yeah" ended 96 ms ago
    await host.wanted.wait()  # the watcher's next look asks for the snippet
    host.asked[0].set_result("Yeah.")
    await host.decided.wait()
    assert host.done == ["resume"] and len(host.asked) == 1
    assert await halts.words("Yeah.", final=True)  # and the final words are no turn
    await watcher


async def test_a_snippet_with_a_stop_word_cuts_without_waiting_for_the_pause() -> None:
    host, halts, _, spawned = rig()
    watcher = await watched(halts, spawned)
    host.quiet_ms, host.voice_end_ms = 64, 400
    await host.wanted.wait()
    host.asked[0].set_result("No.")
    await host.decided.wait()
    assert host.done == ["cut"]
    await watcher
