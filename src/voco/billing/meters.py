"""What a turn costs, in whole units Stripe can meter.

Stripe meter events accept whole numbers only, so every meter counts an
integer unit: milliseconds of audio, tokens, actions. Rounding seconds would
lose or invent money on every turn; milliseconds do not.

Each usage event gets a deterministic id from ``(turn_id, meter)``: a turn
written twice (a retried transaction, a replayed request) produces the same
ids, and the table's primary key turns the second write into a no-op instead of
a double charge.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

# A fixed namespace: ids must be the same on every engine and every restart.
USAGE_NAMESPACE = uuid.UUID("5f1e0c3a-9d6b-4c1e-8a55-766f636f6269")

USER_SPEECH_MS = "voco_user_speech_ms"
ASSISTANT_AUDIO_MS = "voco_assistant_audio_ms"
STT_AUDIO_MS = "voco_stt_audio_ms"
LLM_INPUT_TOKENS = "voco_llm_input_tokens"
LLM_OUTPUT_TOKENS = "voco_llm_output_tokens"
TOOL_ACTIONS = "voco_tool_actions"

METERS: tuple[str, ...] = (
    USER_SPEECH_MS,
    ASSISTANT_AUDIO_MS,
    STT_AUDIO_MS,
    LLM_INPUT_TOKENS,
    LLM_OUTPUT_TOKENS,
    TOOL_ACTIONS,
)
# Token meters are kept per model (Sonnet and Haiku cost differently); the
# model becomes a dimension of the event, not a separate Stripe meter.
PER_MODEL = frozenset({LLM_INPUT_TOKENS, LLM_OUTPUT_TOKENS})


@dataclass(frozen=True)
class TurnUsage:
    """What one finished or interrupted turn used, as measured by the engine."""

    turn_id: str
    user_speech_ms: int = 0
    assistant_audio_ms: int = 0  # audio actually sent (cut at a barge-in)
    stt_audio_ms: int = 0
    llm_tokens: Mapping[str, tuple[int, int]] | None = None  # model -> (input, output)
    tool_actions: int = 0

    def __post_init__(self) -> None:
        values = [self.user_speech_ms, self.assistant_audio_ms, self.stt_audio_ms]
        values.append(self.tool_actions)
        for tokens in (self.llm_tokens or {}).values():
            values.extend(tokens)
        if any(v < 0 for v in values):
            raise ValueError(f"usage of turn {self.turn_id!r} has a negative value")


@dataclass(frozen=True)
class UsageEvent:
    id: uuid.UUID
    turn_id: str
    meter: str
    model: str  # "" where the meter is not per model
    value: int


def usage_id(turn_id: str, meter: str, model: str = "") -> uuid.UUID:
    return uuid.uuid5(USAGE_NAMESPACE, f"{turn_id}\x1f{meter}\x1f{model}")


def usage_events(usage: TurnUsage) -> list[UsageEvent]:
    """The turn's usage rows; zero-valued meters are left out (nothing to bill)."""
    rows: list[tuple[str, str, int]] = [
        (USER_SPEECH_MS, "", usage.user_speech_ms),
        (ASSISTANT_AUDIO_MS, "", usage.assistant_audio_ms),
        (STT_AUDIO_MS, "", usage.stt_audio_ms),
        (TOOL_ACTIONS, "", usage.tool_actions),
    ]
    for model, (tokens_in, tokens_out) in sorted((usage.llm_tokens or {}).items()):
        rows.append((LLM_INPUT_TOKENS, model, tokens_in))
        rows.append((LLM_OUTPUT_TOKENS, model, tokens_out))
    return [
        UsageEvent(usage_id(usage.turn_id, meter, model), usage.turn_id, meter, model, value)
        for meter, model, value in rows
        if value > 0
    ]


def totals(events: Iterable[UsageEvent]) -> dict[tuple[str, str], int]:
    """Sum per (meter, model): what a test compares with what Stripe received."""
    out: dict[tuple[str, str], int] = {}
    for e in events:
        out[e.meter, e.model] = out.get((e.meter, e.model), 0) + e.value
    return out
