"""A tentative halt's snippet decode on the runtime's cheaper snippet recogniser
(issue 10 §2): it hears exactly the utterance's audio so far, and never stands
in for the pause's preview — the turn's words stay the main recogniser's."""

from __future__ import annotations

from typing import Any

from tests.engine.test_listener_turn_end import FRAME, Rig
from voco.providers.base import STT, SpeechStream, STTCapabilities


class SnippetStream(SpeechStream):
    def __init__(self, stt: SnippetSTT) -> None:
        self._stt = stt
        self.pcm = b""

    async def push(self, pcm: bytes) -> None:
        self.pcm += pcm

    async def finish(self) -> str:
        self._stt.heard.append(self.pcm)
        return "mhm"

    async def aclose(self) -> None:
        self._stt.closed += 1


class SnippetSTT(STT):
    name = "snippet"
    capabilities = STTCapabilities(streaming=False, interim_results=False)

    def __init__(self) -> None:
        self.heard: list[bytes] = []
        self.closed = 0

    async def open_stream(self, on_partial: Any = None, **kw: Any) -> SpeechStream:
        return SnippetStream(self)


def with_snippets(rig: Rig) -> SnippetSTT:
    snip = SnippetSTT()
    rig.listener.rt.snippet_stt = snip
    return snip


async def test_the_snippet_decodes_the_utterance_so_far_on_the_snippet_recogniser() -> None:
    rig = Rig(["Run the tests."])
    snip = with_snippets(rig)
    await rig.frames(10, 0.9)
    await rig.frames(2, 0.0)  # 64 ms of quiet: the judge asks
    words = rig.listener.words_now()
    assert words is not None
    assert await words == "mhm"
    assert rig.stt.previews == []  # the pause's own preview, once
    (pcm,) = snip.heard
    assert len(pcm) % len(FRAME) == 0 and len(pcm) >= 12 * len(FRAME)  # preroll + all so far
    assert snip.closed == 1


async def test_the_snippet_is_not_the_pauses_preview() -> None:
    """The turn's transcript comes from the main recogniser's preview, even when
    a snippet was decoded in the same silence (it would otherwise replace it)."""
    rig = Rig(["Run the tests."])
    with_snippets(rig)
    await rig.frames(10, 0.9)
    await rig.frames(2, 0.0)
    words = rig.listener.words_now()
    assert words is not None and await words == "mhm"
    await rig.frames(10, 0.0)
    await rig.settle()
    assert [t.text for t in rig.host.turns] == ["Run the tests."]


async def test_without_a_snippet_recogniser_the_snippet_is_the_main_preview() -> None:
    rig = Rig(["Run the tests."])
    await rig.frames(10, 0.9)
    await rig.frames(2, 0.0)
    words = rig.listener.words_now()
    assert words is not None and await words == "Run the tests."
    await rig.frames(10, 0.0)
    await rig.settle()
    assert [t.text for t in rig.host.turns] == ["Run the tests."]
    assert rig.stt.previews == []  # one decode, shared with the pause


async def test_a_snippet_before_the_pause_is_the_pauses_preview() -> None:
    rig = Rig(["Yeah."])
    await rig.frames(3, 0.9)  # too little speech for the early pause
    await rig.frames(2, 0.0)
    words = rig.listener.words_now()
    assert words is not None and await words == "Yeah."
    await rig.frames(12, 0.0)
    await rig.settle()
    assert [t.text for t in rig.host.turns] == ["Yeah."]  # no second decode was asked


async def test_a_new_utterance_starts_a_new_snippet() -> None:
    rig = Rig(["Yeah.", "Stop."])
    snip = with_snippets(rig)
    await rig.frames(10, 0.9)
    await rig.frames(20, 0.0)
    await rig.settle()
    await rig.frames(4, 0.9)
    await rig.frames(2, 0.0)
    words = rig.listener.words_now()
    assert words is not None and await words == "mhm"
    preroll = rig.listener.rt.turn_config.preroll_ms // 32
    assert len(snip.heard[0]) <= (4 + 2 + preroll + 1) * len(FRAME)  # not the first one's
