"""Spoken turns → intents (``voco.agent.command_intents``): clauses, continuation,
small talk, and the case of search terms."""

from __future__ import annotations

from voco.agent.command_intents import parse_utterance


def test_intents_keep_case_of_search_terms() -> None:
    assert parse_utterance("Grep for MyClass.").target == "MyClass"
    assert parse_utterance("Search for self dot path.").target == "self.path"
    assert parse_utterance("Search for max underscore steps.").target == "max_steps"
    assert parse_utterance("Show me the last twenty commits.").count == 20
    assert parse_utterance("Search for token in source.").scope == "source"
