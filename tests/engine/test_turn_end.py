"""The turn-end policy: how long a pause must last, from the words said."""

from __future__ import annotations

import pytest

from voco.engine.turn_end import Completeness, TurnEnd, TurnEndConfig, completeness

C, U, N = Completeness.COMPLETE, Completeness.UNSURE, Completeness.INCOMPLETE  # N: not done


@pytest.mark.parametrize(
    ("text", "want"),
    [
        ("Run the tests.", C),
        ("Show me the git status.", C),
        ("What files are in this project?", C),
        ("Open the readme please", C),
        ("Thank you", C),
        ("Read the first ten lines of", N),
        ("Read the first 10 lines of.", N),  # Whisper's "." says nothing
        ("Open the file called", N),
        ("Search the project for...", N),  # Whisper's own trailing-off mark
        ("Open the-", N),
        ("List the files in the", N),
        ("Read the readme and", N),
        ("Show me the git status, um", N),
        ("Show me the git status, um...", N),
        ("Go to line one hundred and", N),
        ("Open main dot", N),
        ("Set the timeout to", N),
        ("Open", N),  # a verb that wants its object
        ("Go to line twenty", U),  # a number that may go on
        ("Yeah", U),
        ("", U),
        ("...", N),
    ],
)
def test_completeness(text: str, want: Completeness) -> None:
    assert completeness(text) is want


def test_silence_waits_for_the_transcript_then_adapts() -> None:
    te = TurnEnd(TurnEndConfig(complete_ms=160, unsure_ms=320, incomplete_ms=1000))
    assert not te.due(10_000)  # not paused: never due
    te.pause(1000)
    # words unknown: as patient as for an unfinished sentence
    assert te.silence_needed() == 1000
    assert not te.due(1300)
    assert te.transcript("Run the tests.") is C
    assert not te.due(1159) and te.due(1160)
    te.resume()
    te.pause(3000)
    assert te.transcript("Read the first ten lines of") is N
    assert not te.due(3999) and te.due(4000)
    te.pause(5000)
    assert te.transcript(None) is None  # the recogniser has no early transcript
    assert not te.due(5319) and te.due(5320)


def test_a_new_pause_forgets_the_last_transcript() -> None:
    te = TurnEnd()
    te.pause(0)
    te.transcript("Run the tests.")
    te.pause(500)
    assert te.silence_needed() == te.config.incomplete_ms


@pytest.mark.parametrize(
    "kw",
    [
        {"complete_ms": 10},
        {"complete_ms": 400, "unsure_ms": 320},
        {"unsure_ms": 2000, "incomplete_ms": 1000},
        {"incomplete_ms": 60_000},
    ],
)
def test_bad_config_is_refused(kw: dict[str, int]) -> None:
    with pytest.raises(ValueError):
        TurnEndConfig(**kw)
