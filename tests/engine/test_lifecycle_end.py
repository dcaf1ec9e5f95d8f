"""The one "response ended" event (``take_end``) without sockets: given once,
only when nothing more plays and what was heard is known, with the audio
actually sent. The clock is passed in."""

from __future__ import annotations

from voco.engine.lifecycle import Cut, Ended, Phase, ResponseLifecycle
from voco.engine.playout import ResponseAudio


def life(**kw: object) -> ResponseLifecycle:
    return ResponseLifecycle(ResponseAudio("r1"), started_at=100.0, default_model="m", **kw)  # type: ignore[arg-type]


def speaking(words: str = "one two three four", ms: int = 4000) -> ResponseLifecycle:
    lc = life()
    lc.on_text(words, 101.0)
    assert lc.on_audio_start(101.0)
    lc.audio.begin_clause(words)
    lc.audio.add_audio(ms)
    return lc


def test_a_finished_reply_ends_when_played_out_not_at_agent_done() -> None:
    lc = speaking(ms=1000)
    assert lc.finished() is not None  # agent.done goes out here…
    lc.audio.finish()
    lc.task_ended(101.2)
    assert lc.take_end(101.5) is None  # …but its audio still plays
    end = lc.take_end(102.3)
    assert end == Ended("one two three four", False, None, 1000, "m")
    assert lc.take_end(102.4) is None  # once


def test_audio_played_for_the_full_length_ends_it_at_once() -> None:
    lc = speaking(ms=1000)
    lc.finished()
    lc.audio.finish()
    lc.task_ended(101.2)
    assert lc.on_played(1000, 101.3) is None
    assert lc.take_end(101.3) is not None


def test_no_audio_ends_when_the_task_ends() -> None:
    lc = life()
    lc.on_text("Hi.", 100.1)
    lc.finished()
    assert lc.take_end(100.2) is None  # still running
    lc.task_ended(100.3)
    assert lc.take_end(100.3) == Ended("Hi.", False, None, 0, "m")


def test_a_halted_reply_waits_for_audio_played_and_takes_its_figure() -> None:
    lc = speaking()
    lc.finished()  # text complete, audio playing: a first agent.done
    plan = lc.cut_plan(Cut.SPEECH, 103.0)
    assert plan.done is not None and plan.done.text == "one two"  # the estimate
    assert lc.phase is Phase.HALTED and lc.take_end(103.1) is None  # what was heard?
    lc.on_played(1000, 103.2)  # the client heard one word
    end = lc.take_end(103.2)
    assert end == Ended("one two three four", True, "one", 4000, "m")
    assert lc.take_end(103.3) is None and lc.phase is Phase.DONE


def test_without_audio_played_the_estimate_stands_after_the_wait() -> None:
    lc = speaking()
    lc.played_wait_s = 0.5
    lc.cut_plan(Cut.INTERRUPT, 103.0)
    assert lc.take_end(103.4) is None
    end = lc.take_end(103.5)  # heard as of the cut, not as of now
    assert end is not None and end.interrupted and end.heard_text == "one two"


def test_cut_while_thinking_ends_at_once_and_a_joined_turn_is_marked() -> None:
    lc = life()
    lc.cut_plan(Cut.SPEECH, 100.5)
    end = lc.take_end(100.5)
    assert end == Ended("", True, "", 0, "m", joined=True)
    typed = life()
    typed.cut_plan(Cut.INTERRUPT, 100.5)
    assert typed.take_end(100.5) == Ended("", True, "", 0, "m", joined=False)


def test_conclude_ends_a_halted_or_live_reply_now() -> None:
    halted = speaking()
    halted.cut_plan(Cut.SPEECH, 103.0)
    end = halted.conclude(103.0)
    assert end is not None and end.heard_text == "one two"
    live = speaking()
    live.finished()
    end = live.conclude(102.0)  # the session closes while it plays
    assert end is not None and end.interrupted and end.heard_text == "one"
    assert live.conclude(102.1) is None and live.phase is Phase.DONE


def test_audio_sent_is_what_the_end_reports() -> None:
    lc = speaking(ms=2500)
    lc.cut_plan(Cut.INTERRUPT, 102.0)
    lc.on_played(900, 102.1)
    end = lc.take_end(102.1)
    assert end is not None and end.audio_ms == 2500
