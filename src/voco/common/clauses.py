"""Split streamed reply text into speakable clauses (sans-I/O).

TTS quality wants whole sentences; latency wants the first audio as early as
possible. We emit at sentence ends, and at commas/semicolons/colons once a
clause is long enough to sound natural, so the first clause of a reply reaches
the TTS after a few words instead of after the whole paragraph.

The one place reply text is cut (issue 14 §6): the engine's speaker cuts model
text into TTS units with it, and the offline command mode (an LLM, below the
engine) streams its replies as deltas cut the same way, with
:func:`split_reply`. Here, in ``common``, because both layers read it. The one
real difference is spacing: the speaker wants clauses trimmed, while deltas must
join back to the reply's exact text (``agent.done.text`` is their
concatenation), hence ``keep_spacing``.
"""

from __future__ import annotations

import re

_HARD = re.compile(r"[.!?]+[\"')\]]*\s")
_SOFT = re.compile(r"[,;:]\s|\s[—–-]\s")


class ClauseSplitter:
    """``first_min_soft_chars``: the reply's first clause may end at a comma much
    sooner ("Sure, ..."), because its synthesis time is the user's wait.
    ``keep_spacing``: clauses keep the spaces around them, so they join back to
    exactly the text fed (none is dropped); otherwise they are trimmed."""

    def __init__(
        self,
        *,
        min_soft_chars: int = 24,
        first_min_soft_chars: int = 4,
        max_chars: int = 220,
        keep_spacing: bool = False,
    ) -> None:
        self._buf = ""
        self._keep = keep_spacing
        self._min_soft = min_soft_chars
        self._first_min_soft = first_min_soft_chars
        self._max = max_chars
        self._emitted = 0

    def feed(self, text: str) -> list[str]:
        self._buf += text
        out: list[str] = []
        while True:
            cut = self._next_cut()
            if cut is None:
                break
            clause, self._buf = self._buf[:cut], self._buf[cut:]
            if not self._keep:
                clause = clause.strip()
            if clause:  # kept spacing alone (a run of spaces) is still part of the text
                out.append(clause)
                self._emitted += bool(clause.strip())
        return out

    def flush(self) -> list[str]:
        rest, self._buf = self._buf, ""
        if not self._keep:
            rest = rest.strip()
        return [rest] if rest else []

    def _next_cut(self) -> int | None:
        # the earliest acceptable cut, so streaming token by token cuts exactly
        # where feeding the whole text at once would
        cuts = []
        if hard := _HARD.search(self._buf):
            cuts.append(hard.end())
        min_soft = self._first_min_soft if self._emitted == 0 else self._min_soft
        soft = next((m for m in _SOFT.finditer(self._buf) if m.start() >= min_soft), None)
        if soft is not None:
            cuts.append(soft.end())
        if cuts:
            return min(cuts)
        if len(self._buf) > self._max:  # no punctuation at all: cut at a space
            space = self._buf.rfind(" ", 0, self._max)
            return space + 1 if space > 0 else self._max
        return None


def split_reply(text: str) -> list[str]:
    """A whole reply as the clauses it is spoken in, joining back to ``text``
    exactly (the command mode's deltas); ``[text]`` when there is nothing to cut."""
    splitter = ClauseSplitter(keep_spacing=True)
    return (splitter.feed(text) + splitter.flush()) or [text]
