"""Bookkeeping of a speculative reply (sans-I/O; the asyncio side is
:mod:`voco.engine.prefetch`).

Why: the end-of-turn silence and the reply's first model call and first clause
of speech are otherwise paid one after the other. When the user pauses on a
whole request, the engine starts the reply on the speculative transcript while
the silence runs, and keeps everything it produces here — the model's events,
the first clause's PCM — sent nowhere. When the turn is confirmed with the same
words, the real response (the ordinary graph run, which stores and bills as
always) is served the model call and the clause from these buffers instead of
asking the vendors again. Otherwise the speculation is discarded unheard.

What may run speculatively: the model calls up to the first words, the
synthesis of the first clause, and between those model calls the tool calls
the protocol's one table (``protocol/tools.py``) marks read-only — and only
when every call of that step is; anything that writes or may need approval
waits for the confirmed turn. A read-only call goes to the runtime marked
``speculative`` (it refuses, without asking anyone, what would need approval).
Nothing is checkpointed, nothing reaches the client, nothing is recorded
(docs/protocol.md §6). Whether a buffer may serve a real call is decided by
exact equality of what the call would send (conversation, tier, tool call,
clause text), so a stale speculation can only go unused, never answer a
different question.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass, field

from voco.protocol.tools import TOOLS
from voco.providers.base import ChatMessage, LLMEvent, ToolCall

READ_ONLY = frozenset(t.name for t in TOOLS if t.read_only)


def may_run_speculatively(calls: list[ToolCall]) -> bool:
    """A model step's tool calls may run before the turn is confirmed only if
    each one is read-only by the tool table (never by the model's say)."""
    return bool(calls) and all(c.name in READ_ONLY for c in calls)


_WORDS = re.compile(r"[a-z0-9']+")


def same_request(a: str, b: str) -> bool:
    """Whether two transcripts say the same words (case and punctuation aside):
    a difference in those is "material" and the speculation must go."""
    return _WORDS.findall(a.lower()) == _WORDS.findall(b.lower())


class SpecState(enum.Enum):
    RUNNING = "running"  # preparing, held back
    TAKEN = "taken"  # handed to the confirmed turn's response
    DISCARDED = "discarded"  # the user went on, or the turn said something else


@dataclass
class Speculation:
    """One prepared reply: the request it answers and what it has produced."""

    text: str  # the user's turn as the listener would confirm it
    messages: list[ChatMessage]  # the conversation the model call was given
    tier: str
    state: SpecState = SpecState.RUNNING
    events: list[LLMEvent] = field(default_factory=list)
    clause: str | None = None  # the first clause's spoken text, as given to the TTS
    pcm: list[bytes] = field(default_factory=list)
    llm_served: bool = False
    tts_served: bool = False
    # model calls after the first (each after a step of read-only tool calls)
    later: list[list[ChatMessage]] = field(default_factory=list)
    later_served: set[int] = field(default_factory=set)
    tools: dict[str, tuple[str, dict[str, object]]] = field(default_factory=dict)  # id → call
    tools_served: set[str] = field(default_factory=set)

    def take(self, text: str) -> bool:
        """The turn was confirmed as ``text``: True if this speculation answers it
        (then it is TAKEN); else it is DISCARDED. Only a RUNNING one can be taken."""
        if self.state is SpecState.RUNNING and same_request(self.text, text):
            self.state = SpecState.TAKEN
            return True
        self.discard()
        return False

    def discard(self) -> None:
        if self.state is SpecState.RUNNING:
            self.state = SpecState.DISCARDED

    def serves_llm(self, messages: list[ChatMessage], tier: str) -> bool:
        """A taken speculation serves the first model call that asks exactly what
        it asked; once."""
        if self.state is not SpecState.TAKEN or self.llm_served:
            return False
        if tier != self.tier or messages != self.messages:
            return False
        self.llm_served = True
        return True

    def serves_later(self, messages: list[ChatMessage], tier: str) -> int | None:
        """Which later model call (index into :attr:`later`) a taken speculation
        serves for ``messages``: the one that asked exactly that; each once."""
        if self.state is not SpecState.TAKEN or tier != self.tier:
            return None
        for i, asked in enumerate(self.later):
            if i not in self.later_served and asked == messages:
                self.later_served.add(i)
                return i
        return None

    def serves_tool(self, call_id: str, action: str, payload: dict[str, object]) -> bool:
        """A taken speculation serves the tool call it made, exactly as it made it; once."""
        if self.state is not SpecState.TAKEN or call_id in self.tools_served:
            return False
        if self.tools.get(call_id) != (action, payload):
            return False
        self.tools_served.add(call_id)
        return True

    def serves_tts(self, spoken: str) -> bool:
        """...and the first synthesis of exactly its first clause; once."""
        if self.state is not SpecState.TAKEN or self.tts_served or self.clause is None:
            return False
        if spoken != self.clause:
            return False
        self.tts_served = True
        return True
