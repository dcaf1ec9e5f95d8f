from __future__ import annotations

import pytest

from voco.billing.meters import (
    ASSISTANT_AUDIO_MS,
    LLM_INPUT_TOKENS,
    LLM_OUTPUT_TOKENS,
    TOOL_ACTIONS,
    USER_SPEECH_MS,
    TurnUsage,
    totals,
    usage_events,
)


def test_a_turn_produces_one_row_per_nonzero_meter_and_model() -> None:
    usage = TurnUsage(
        "t1",
        user_speech_ms=1840,
        assistant_audio_ms=3200,
        llm_tokens={"claude-haiku": (120, 40), "claude-sonnet": (900, 0)},
        tool_actions=2,
    )
    rows = usage_events(usage)
    assert totals(rows) == {
        (USER_SPEECH_MS, ""): 1840,
        (ASSISTANT_AUDIO_MS, ""): 3200,
        (TOOL_ACTIONS, ""): 2,
        (LLM_INPUT_TOKENS, "claude-haiku"): 120,
        (LLM_OUTPUT_TOKENS, "claude-haiku"): 40,
        (LLM_INPUT_TOKENS, "claude-sonnet"): 900,
    }


def test_ids_are_deterministic_so_a_retried_write_cannot_double_count() -> None:
    usage = TurnUsage("turn-7", user_speech_ms=500, tool_actions=1)
    assert [r.id for r in usage_events(usage)] == [r.id for r in usage_events(usage)]
    other = TurnUsage("turn-8", user_speech_ms=500, tool_actions=1)
    assert not {r.id for r in usage_events(usage)} & {r.id for r in usage_events(other)}


def test_negative_usage_is_refused() -> None:
    with pytest.raises(ValueError, match="negative"):
        TurnUsage("t", assistant_audio_ms=-1)
