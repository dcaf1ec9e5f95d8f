"""The barge-in verdict without sockets: words and an injected clock."""

from __future__ import annotations

import pytest

from voco.engine.backchannel import (
    BargeJudge,
    BargeTimings,
    Verdict,
    classify,
    own_voice,
    still_no_turn,
    words_of,
)


@pytest.mark.parametrize(
    "text",
    ["mhm", "Mm-hmm.", "uh-huh", "Yeah.", "okay", "OK, right.", "go on", "Right, I see.",
     "Hmm", "", "  ", "you", "Thank you.", "[coughing]", "(clicking)", "*cough*", "...",
     "yeah yeah", "Got it.", "Sure.", "M-M-F-M-F", "FFF", "G-d", "MMM", "And then?"],
)  # fmt: skip
def test_backchannels_and_noise_resume(text: str) -> None:
    assert classify(text) is Verdict.RESUME


@pytest.mark.parametrize(
    "text",
    ["wait", "Stop.", "No.", "no no", "hold on", "Wait, stop.", "read the config file",
     "okay now run the tests", "Yeah but what about the tests?", "actually", "open main dot py",
     "okay okay okay okay okay", "what", "and then open it", "Why?", "A test.", "so stop"],
)  # fmt: skip
def test_real_interruptions_cut(text: str) -> None:
    assert classify(text) is Verdict.CUT


def test_speculative_backchannel_resumes_at_once() -> None:
    j = BargeJudge(halted_at=10.0, onset_at=10.0)
    assert j.heard("mhm", 10.35) is Verdict.RESUME
    assert j.next_poll_at() is None
    assert j.heard("stop", 10.5) is Verdict.RESUME  # decided: later words do not flip it


def test_stop_word_cuts() -> None:
    j = BargeJudge(halted_at=10.0, onset_at=10.0)
    assert j.heard("Wait,", 10.3) is Verdict.CUT


def test_nothing_heard_is_noise() -> None:
    j = BargeJudge(halted_at=10.0, onset_at=10.0)
    assert j.poll(10.2, in_speech=True) is Verdict.PENDING
    assert j.nothing_heard() is Verdict.RESUME


def test_long_speech_is_a_real_turn_without_any_transcript() -> None:
    t = BargeTimings(max_speech_ms=1200, max_wait_ms=1500)
    j = BargeJudge(halted_at=10.0, onset_at=10.0, timings=t)
    assert j.poll(11.0, in_speech=True) is Verdict.PENDING
    assert j.poll(11.25, in_speech=True) is Verdict.CUT


def test_speech_that_ended_waits_for_the_stt_then_gives_up() -> None:
    t = BargeTimings(max_speech_ms=1200, max_wait_ms=1500, noise_max_speech_ms=600, poll_ms=64)
    j = BargeJudge(halted_at=10.0, onset_at=10.0, timings=t)
    # 800 ms of voice: too long to pass for noise on timing alone
    assert j.poll(10.8, in_speech=False) is Verdict.PENDING  # ended: not long speech
    assert j.poll(11.3, in_speech=False) is Verdict.PENDING
    assert j.next_poll_at() == pytest.approx(11.364)
    assert j.poll(11.5, in_speech=False) is Verdict.CUT  # no words in time: the cut stands
    assert j.next_poll_at() is None


def test_a_short_burst_gone_quiet_without_words_resumes_provisionally() -> None:
    t = BargeTimings(noise_quiet_ms=350, noise_max_speech_ms=600)
    j = BargeJudge(halted_at=10.0, onset_at=10.0, timings=t)
    # 300 ms of voice, then quiet (the utterance has not ended yet)
    assert j.poll(10.3, in_speech=True, quiet_ms=0) is Verdict.PENDING
    assert j.poll(10.6, in_speech=True, quiet_ms=300) is Verdict.PENDING  # a comma's pause
    assert j.poll(10.66, in_speech=True, quiet_ms=360) is Verdict.RESUME
    assert j.provisional  # the final words are judged again (engine/barge.py)


def test_a_burst_with_words_already_waits_for_them_not_the_timer() -> None:
    j = BargeJudge(halted_at=10.0, onset_at=10.0)
    j.words = "no"  # a transcript came (it decided on its own when it did)
    assert j.poll(10.8, in_speech=True, quiet_ms=500) is Verdict.PENDING


def test_speech_that_goes_on_is_cut_on_timing_even_with_pauses() -> None:
    t = BargeTimings(max_speech_ms=1200, max_wait_ms=5000)
    j = BargeJudge(halted_at=10.0, onset_at=10.0, timings=t)
    assert j.poll(10.4, in_speech=True, quiet_ms=200) is Verdict.PENDING  # "No, …"
    assert j.poll(11.3, in_speech=True, quiet_ms=0) is Verdict.CUT  # "…stop it now"


def test_the_judge_polls_often_while_undecided_and_never_past_the_deadline() -> None:
    t = BargeTimings(max_wait_ms=100, poll_ms=64)
    j = BargeJudge(halted_at=10.0, onset_at=10.0, timings=t)
    assert j.next_poll_at() == pytest.approx(10.064)
    j.poll(10.064, in_speech=True)
    assert j.next_poll_at() == pytest.approx(10.1)


def test_a_snippet_is_asked_for_once_per_voice_end_at_a_short_quiet() -> None:
    j = BargeJudge(halted_at=10.0, onset_at=10.0)
    assert not j.wants_words(quiet_ms=32, voice_end_ms=480)  # a gap inside a word
    assert j.wants_words(quiet_ms=64, voice_end_ms=480)
    j.asked(10.5, 480)
    assert not j.wants_words(quiet_ms=96, voice_end_ms=480)  # already on its way
    assert j.wants_words(quiet_ms=64, voice_end_ms=800)  # the voice came back, then stopped
    off = BargeJudge(10.0, 10.0, BargeTimings(snippet_quiet_ms=None))
    assert not off.wants_words(quiet_ms=500, voice_end_ms=480)


def test_a_backchannel_snippet_resumes_once_the_quiet_is_confirmed() -> None:
    j = BargeJudge(halted_at=10.0, onset_at=10.0)  # confirm_quiet_ms 96
    j.asked(10.45, 480)
    # the words came before the silence was confirmed: they wait for it
    assert j.snippet_heard("Yeah.", 10.5, 480) is Verdict.PENDING
    assert j.poll(10.5, in_speech=True, quiet_ms=64, voice_end_ms=480) is Verdict.PENDING
    assert j.poll(10.53, in_speech=True, quiet_ms=96, voice_end_ms=480) is Verdict.RESUME
    assert not j.provisional  # on its words: the final words still must agree


def test_a_stale_backchannel_snippet_never_resumes() -> None:
    j = BargeJudge(halted_at=10.0, onset_at=10.0)
    j.asked(10.45, 480)
    assert j.snippet_heard("Okay,", 10.5, 480) is Verdict.PENDING
    # "Okay, … now open the tests": the voice came back; its new end is not the snippet's
    assert j.poll(10.9, in_speech=True, quiet_ms=128, voice_end_ms=800) is Verdict.PENDING
    assert j.wants_words(quiet_ms=64, voice_end_ms=800)  # ask again, on the whole of it


def test_a_snippet_with_real_words_cuts_at_once() -> None:
    j = BargeJudge(halted_at=10.0, onset_at=10.0)
    j.asked(10.3, 300)
    assert j.snippet_heard("Stop.", 10.4, 300) is Verdict.CUT  # no quiet to wait for


def test_a_stalled_decision_is_a_cut_at_the_deadline_never_a_resume() -> None:
    """The safe default: a snippet that read as a backchannel but whose quiet
    is never confirmed (the voice goes on and off) or words that never come
    end in the cut at ``max_wait_ms`` — the reply is never resumed over speech
    nobody understood, and the user, who has the floor, is not kept waiting."""
    j = BargeJudge(10.0, 10.0, BargeTimings(max_wait_ms=1000))
    j.asked(10.3, 300)
    assert j.snippet_heard("mhm", 10.35, 300) is Verdict.PENDING
    assert j.poll(10.6, in_speech=True, quiet_ms=32, voice_end_ms=570) is Verdict.PENDING
    assert j.poll(11.0, in_speech=True, quiet_ms=64, voice_end_ms=930) is Verdict.CUT


REF = words_of("The engine listens to your voice, transcribes it, thinks about it, and talks back.")


@pytest.mark.parametrize(
    "text",
    ["transcribes it, thinks about it", "listens to your voice", "Thinks about it.", "voice"],
)
def test_the_replys_own_words_coming_back_resume(text: str) -> None:
    assert own_voice(words_of(text), REF)
    assert classify(text, REF) is Verdict.RESUME


@pytest.mark.parametrize(
    "text",
    ["what is the engine", "stop", "no", "open the tests", "talks about the tests please"],
)
def test_a_request_sharing_a_few_words_with_the_reply_is_not_echo(text: str) -> None:
    assert not own_voice(words_of(text), REF)
    assert classify(text, REF) is Verdict.CUT


def test_the_judge_resumes_on_its_own_echo() -> None:
    j = BargeJudge(halted_at=10.0, onset_at=10.0, reference=REF)
    assert j.heard("and talks back", 10.4) is Verdict.RESUME


def test_after_a_timing_resume_only_a_stop_word_makes_a_turn() -> None:
    assert still_no_turn("the price.", REF, provisional=True)  # a misheard echo
    assert still_no_turn("", REF, provisional=True)
    assert not still_no_turn("Stop.", REF, provisional=True)
    assert not still_no_turn("No, wait.", REF, provisional=True)


def test_after_a_words_resume_the_final_words_must_still_be_a_backchannel() -> None:
    assert still_no_turn("Mhm, yeah.", REF, provisional=False)
    assert still_no_turn("thinks about it", REF, provisional=False)  # echo
    assert not still_no_turn("okay now open the tests", REF, provisional=False)
