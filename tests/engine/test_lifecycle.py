"""The response lifecycle without sockets, models or a wall clock: every way a
response ends, with the clock passed in."""

from __future__ import annotations

import pytest

from voco.engine.lifecycle import (
    NOTHING,
    Cut,
    Done,
    LifecycleError,
    Phase,
    ResponseLifecycle,
    TurnDeadlines,
)
from voco.engine.playout import ResponseAudio


def life(now: float = 100.0, **kw: object) -> ResponseLifecycle:
    return ResponseLifecycle(ResponseAudio("r1"), started_at=now, default_model="m-haiku", **kw)  # type: ignore[arg-type]


def speaking(words: str = "one two three four", ms: int = 4000, at: float = 101.0):
    lc = life()
    lc.on_text(words, at)
    assert lc.on_audio_start(at)
    lc.audio.begin_clause(words)
    lc.audio.add_audio(ms)
    return lc


def test_finished_without_audio_is_done_and_says_its_text() -> None:
    lc = life()
    lc.on_model("m-sonnet")
    lc.on_text("Hello there.", 100.5)
    assert lc.finished() == Done("Hello there.", False, "m-sonnet")
    lc.task_ended(100.6)
    assert lc.phase is Phase.DONE and not lc.is_live(100.6)
    assert lc.cut_plan(Cut.INTERRUPT, 100.7) is NOTHING


def test_model_reported_is_the_one_that_answered_else_the_default() -> None:
    lc = life()
    assert lc.finished() == Done("", False, "m-haiku")
    lc2 = life()
    lc2.on_model("router-pick")
    lc2.on_model("command")  # the fallback answered
    assert lc2.finished() is not None and lc2.finished().model == "command"  # type: ignore[union-attr]


def test_speech_while_thinking_cuts_quietly_joins_the_turn_and_says_done() -> None:
    lc = life()
    plan = lc.cut_plan(Cut.SPEECH, 101.0)
    assert plan.halt is None and plan.stop_task and plan.join_turn
    assert plan.done == Done("", True, "m-haiku")  # every response gets its agent.done
    assert plan.record_heard is None  # nothing was heard, nothing to store cut
    assert lc.phase is Phase.DONE and not lc.may_send_audio()


def test_barge_in_while_playing_halts_first_and_cuts_to_what_was_heard() -> None:
    lc = speaking()
    plan = lc.cut_plan(Cut.SPEECH, 103.0)  # 2 s of 4 s played: half the words
    assert plan.halt == "barge_in" and plan.stop_task and not plan.join_turn
    assert plan.done == Done("one two", True, "m-haiku")
    assert plan.record_heard == "one two"
    assert lc.phase is Phase.HALTED and lc.audio.halted and not lc.may_send_audio()


def test_interrupt_halts_with_its_own_reason() -> None:
    plan = speaking().cut_plan(Cut.INTERRUPT, 102.0)
    assert plan.halt == "interrupt"


def test_a_second_cut_plans_nothing() -> None:
    lc = speaking()
    lc.cut_plan(Cut.SPEECH, 102.0)
    assert lc.cut_plan(Cut.INTERRUPT, 102.1) is NOTHING
    assert lc.cut_plan(Cut.CLOSE, 102.2) is NOTHING


def test_done_sent_while_audio_plays_is_superseded_by_the_cut() -> None:
    lc = speaking()
    first = lc.finished()
    assert first is not None and not first.interrupted
    lc.audio.finish()
    lc.task_ended(101.5)
    assert lc.phase is Phase.SPEAKING and lc.is_live(101.5)  # still audible
    plan = lc.cut_plan(Cut.SPEECH, 102.0)
    assert plan.halt == "barge_in" and not plan.stop_task
    assert plan.done is not None and plan.done.interrupted and plan.done.text == "one"


def test_played_out_reply_is_done_and_cannot_be_cut() -> None:
    lc = speaking(ms=1000)
    lc.finished()
    lc.audio.finish()
    lc.task_ended(101.5)
    assert not lc.settle(101.9)  # 900 ms of 1000 played
    assert lc.settle(102.3)  # played out (with the grace)
    assert lc.phase is Phase.DONE
    assert lc.cut_plan(Cut.SPEECH, 102.4) is NOTHING


def test_close_stops_the_task_and_sends_nothing() -> None:
    lc = speaking()
    plan = lc.cut_plan(Cut.CLOSE, 102.0)
    assert plan.stop_task and plan.halt is None and plan.done is None
    assert plan.record_heard is None and not lc.may_send_audio()


def test_audio_start_after_a_cut_is_refused() -> None:
    lc = life()
    lc.cut_plan(Cut.INTERRUPT, 100.5)
    assert not lc.on_audio_start(100.6)
    assert lc.audio.started_at is None


def test_audio_played_corrects_the_heard_text_of_a_halted_reply() -> None:
    lc = speaking()
    lc.cut_plan(Cut.SPEECH, 103.0)
    assert lc.on_played(0, 103.1) == ""
    assert lc.on_played(4000, 103.2) == "one two three four"
    assert speaking().on_played(1000, 101.5) is None  # not halted: nothing to correct


def test_still_working_cue_is_due_once_after_silence() -> None:
    lc = life(still_working_s=2.0)
    assert lc.next_cue_at() == 102.0
    assert not lc.still_working_due(101.9)
    assert lc.still_working_due(102.0)
    assert not lc.still_working_due(105.0)  # once
    assert lc.next_cue_at() is None


def test_still_working_cue_is_not_a_first_token_and_never_follows_words() -> None:
    lc = life()
    lc.on_text("Still working on it. ", 102.0, from_model=False)
    assert lc.first_delta_at is None and lc.text == ["Still working on it. "]
    lc2 = life()
    lc2.on_text("Sure.", 100.5)
    assert lc2.next_cue_at() is None and not lc2.still_working_due(110.0)
    lc3 = life()
    lc3.task_ended(100.1)
    assert not lc3.still_working_due(110.0)


def test_illegal_moves_are_bugs() -> None:
    lc = life()
    lc.cut_plan(Cut.INTERRUPT, 100.5)
    with pytest.raises(LifecycleError):
        lc._go(Phase.SPEAKING)
    halted = speaking()
    halted.cut_plan(Cut.SPEECH, 102.0)
    halted._go(Phase.RESUMED)  # reserved for issue 10: the move exists
    assert halted.phase is Phase.RESUMED


def test_deadlines_must_be_positive() -> None:
    with pytest.raises(ValueError, match="first_token_s"):
        TurnDeadlines(first_token_s=0)


# ------------------------------------------------- tentative halt (issue 10)


def test_tentative_halt_only_halts_and_defers_everything_else() -> None:
    lc = speaking()
    plan = lc.cut_plan(Cut.SPEECH, 102.0, tentative=True)
    assert plan.halt == "barge_in"
    assert not plan.stop_task and plan.done is None and plan.record_heard is None
    assert lc.phase is Phase.HALTED and lc.pending_halt and not lc.cut
    assert not lc.may_send_audio() and not lc.is_playing(102.0)
    assert not lc.settle(103.0)  # waits for the verdict


def test_confirmed_cut_is_the_deferred_cut_to_what_was_heard_at_the_halt() -> None:
    lc = speaking()
    lc.cut_plan(Cut.SPEECH, 102.0, tentative=True)  # 1 s of 4 s played: one word
    plan = lc.confirm_cut(103.5)  # the verdict comes later: the halt point counts
    assert plan.halt is None and plan.stop_task
    assert plan.done == Done("one", True, "m-haiku") and plan.record_heard == "one"
    assert lc.cut and not lc.pending_halt
    assert lc.confirm_cut(104.0) is NOTHING and lc.resume(104.0) is None


def test_any_cut_of_a_pending_halt_confirms_it() -> None:
    lc = speaking()
    lc.cut_plan(Cut.SPEECH, 102.0, tentative=True)
    plan = lc.cut_plan(Cut.INTERRUPT, 102.5)
    assert plan.halt is None and plan.done is not None and plan.done.interrupted


def test_resume_replays_from_the_played_point_on_a_reanchored_clock() -> None:
    lc = speaking()
    lc.cut_plan(Cut.SPEECH, 102.0, tentative=True)
    assert lc.on_played(900, 102.1) is None  # pending: nothing to re-store
    assert lc.resume(102.5) == 900  # the client's report wins over the estimate
    assert lc.phase is Phase.RESUMED and lc.may_send_audio() and not lc.cut
    assert lc.audio.heard_ms(103.0) == 1400  # the timeline goes on from 900 ms
    assert lc.is_playing(103.0)
    lc.caught_up()
    assert lc.phase is Phase.SPEAKING
    assert lc.finished() == Done("one two three four", False, "m-haiku")
    # a second barge-in over the resumed reply halts it again
    assert lc.cut_plan(Cut.SPEECH, 103.0, tentative=True).halt == "barge_in"


def test_resume_without_a_report_uses_the_estimate_frozen_at_the_halt() -> None:
    lc = speaking()
    lc.cut_plan(Cut.SPEECH, 102.0, tentative=True)
    assert lc.resume(102.6) == 1000


def test_close_during_a_pending_halt_only_stops_the_task() -> None:
    lc = speaking()
    lc.cut_plan(Cut.SPEECH, 102.0, tentative=True)
    plan = lc.cut_plan(Cut.CLOSE, 102.1)
    assert plan.stop_task and plan.done is None and plan.halt is None
