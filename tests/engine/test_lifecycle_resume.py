"""A tentative barge-in and the response's one end (``take_end``), without
sockets: the clock is passed in. A halt being judged has not ended the
response; a resume continues the same response (one uninterrupted reply on
record, heard once, billed for what crossed the wire); a cut after it ends the
response exactly as any cut of a playing reply does."""

from __future__ import annotations

from voco.engine.lifecycle import Cut, Ended, Phase, ResponseLifecycle
from voco.engine.playout import ResponseAudio

WORDS = "one two three four"


def speaking(ms: int = 4000) -> ResponseLifecycle:
    """4 s of reply audio sent from 101.0 (one word a second), the model done."""
    lc = ResponseLifecycle(ResponseAudio("r1"), started_at=100.0, default_model="m")
    lc.on_text(WORDS, 101.0)
    assert lc.on_audio_start(101.0)
    lc.audio.begin_clause(WORDS)
    lc.audio.add_audio(ms)
    return lc


def play_out(lc: ResponseLifecycle, now: float) -> None:
    """The model's text is complete and the speaker is done."""
    assert lc.finished() is not None
    lc.audio.finish()
    lc.task_ended(now)


def test_a_pending_halt_never_ends_the_response() -> None:
    lc = speaking()
    assert lc.cut_plan(Cut.SPEECH, 102.0, tentative=True).halt == "barge_in"
    assert lc.on_played(1000, 102.1) is None  # the page's report after halt_audio
    # long past played_wait_s, the report in: still undecided, so not ended
    assert lc.take_end(104.0) is None and lc.phase is Phase.HALTED
    assert lc.is_live(104.0)  # its task runs on: a new user act must cut it


def test_halt_then_resume_then_played_out_is_one_uninterrupted_reply() -> None:
    lc = speaking()
    lc.cut_plan(Cut.SPEECH, 102.0, tentative=True)
    lc.on_played(900, 102.1)
    assert lc.resume(102.5) == 900  # replay from what the client played
    lc.caught_up()
    assert lc.phase is Phase.SPEAKING and not lc.cut
    play_out(lc, 103.0)
    # the timeline goes on from 900 ms at 102.5: 3.1 s of it still plays
    assert lc.take_end(105.0) is None
    end = lc.take_end(105.8)
    # billed: 4000 ms sent, then 3100 ms of it (900 → 4000) sent again
    assert end == Ended(WORDS, False, None, 7100, "m")
    assert lc.take_end(106.0) is None  # given once


def test_a_resumed_reply_ends_on_the_pages_report_on_its_timeline() -> None:
    lc = speaking()
    lc.cut_plan(Cut.SPEECH, 102.0, tentative=True)
    assert lc.resume(102.3) == 1000  # no report: the estimate frozen at the halt
    lc.caught_up()
    play_out(lc, 102.4)
    lc.on_played(4000, 102.5)  # playback ended (from_ms + what it played)
    assert lc.take_end(102.5) == Ended(WORDS, False, None, 7000, "m")


def test_halt_then_cut_ends_like_any_cut_with_what_was_heard() -> None:
    lc = speaking()
    lc.cut_plan(Cut.SPEECH, 102.0, tentative=True)
    lc.on_played(2100, 102.2)  # came while the halt was judged: it counts
    plan = lc.confirm_cut(102.4)
    assert plan.stop_task and plan.halt is None  # halt_audio went out already
    assert plan.done is not None and plan.done.text == "one two"
    assert plan.record_heard == "one two"
    lc.task_ended(102.5)  # the session stops the task, then takes the end
    # what was heard is known (the report during the halt): it ends at once
    assert lc.take_end(102.5) == Ended(WORDS, True, "one two", 4000, "m")


def test_halt_then_cut_without_a_report_waits_from_the_halt_not_the_verdict() -> None:
    lc = speaking()
    lc.cut_plan(Cut.SPEECH, 102.0, tentative=True)
    lc.confirm_cut(102.6)
    lc.task_ended(102.6)
    assert lc.take_end(102.9) is None  # played_wait_s (1 s) runs from the halt
    assert lc.take_end(103.0) == Ended(WORDS, True, "one", 4000, "m")


def test_halt_then_session_close_ends_it_cut_to_the_halt() -> None:
    lc = speaking()
    lc.cut_plan(Cut.SPEECH, 102.0, tentative=True)
    plan = lc.cut_plan(Cut.CLOSE, 102.3)  # nothing is sent: the socket goes away
    assert plan.stop_task and plan.done is None and plan.halt is None
    assert lc.conclude(102.3) == Ended(WORDS, True, "one", 4000, "m")


def test_conclude_alone_confirms_a_pending_halt() -> None:
    lc = speaking()
    lc.cut_plan(Cut.SPEECH, 102.0, tentative=True)
    assert lc.conclude(102.1) == Ended(WORDS, True, "one", 4000, "m")


def test_resume_then_a_second_barge_in_cut_counts_each_replay_once() -> None:
    lc = speaking()
    lc.cut_plan(Cut.SPEECH, 102.0, tentative=True)
    assert lc.resume(102.5) == 1000
    lc.caught_up()
    # 1.5 s into the reply's timeline: a second barge-in, this time real
    assert lc.cut_plan(Cut.SPEECH, 103.0, tentative=True).halt == "barge_in"
    assert lc.pending_halt
    # the first halt's late report (900 ms) is stale: the resume overtook it
    assert lc.on_played(900, 103.1) is None
    assert lc.audio.heard_ms(103.1) == 1500
    lc.on_played(2600, 103.2)  # the second halt's own report
    plan = lc.confirm_cut(103.3)
    assert plan.done is not None and plan.done.text == "one two"
    lc.task_ended(103.4)
    assert lc.take_end(103.4) == Ended(WORDS, True, "one two", 7000, "m")


def test_resume_then_a_second_barge_in_resumed_again_plays_out() -> None:
    lc = speaking()
    lc.cut_plan(Cut.SPEECH, 102.0, tentative=True)
    assert lc.resume(102.5) == 1000  # replays 3000 ms
    lc.caught_up()
    lc.cut_plan(Cut.SPEECH, 103.0, tentative=True)
    assert lc.resume(103.2) == 1500  # replays 2500 ms
    lc.caught_up()
    play_out(lc, 103.3)
    lc.on_played(4000, 105.8)
    assert lc.take_end(105.8) == Ended(WORDS, False, None, 4000 + 3000 + 2500, "m")


def test_a_resumed_reply_can_still_be_cut_by_an_interrupt() -> None:
    lc = speaking()
    lc.cut_plan(Cut.SPEECH, 102.0, tentative=True)
    lc.resume(102.5)
    lc.caught_up()
    plan = lc.cut_plan(Cut.INTERRUPT, 103.5)  # 2 s into its timeline
    assert plan.halt == "interrupt" and plan.done is not None and plan.done.text == "one two"
