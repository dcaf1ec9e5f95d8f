"""Split streamed reply text into speakable clauses (sans-I/O).

TTS quality wants whole sentences; latency wants the first audio as early as
possible. We emit at sentence ends, and at commas/semicolons/colons once a
clause is long enough to sound natural, so the first clause of a reply reaches
the TTS after a few words instead of after the whole paragraph.
"""

from __future__ import annotations

import re

_HARD = re.compile(r"[.!?]+[\"')\]]*\s")
_SOFT = re.compile(r"[,;:]\s|\s[—–-]\s")


class ClauseSplitter:
    """``first_min_soft_chars``: the reply's first clause may end at a comma much
    sooner ("Sure, ..."), because its synthesis time is the user's wait."""

    def __init__(
        self, *, min_soft_chars: int = 24, first_min_soft_chars: int = 4, max_chars: int = 220
    ) -> None:
        self._buf = ""
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
            clause, self._buf = self._buf[:cut].strip(), self._buf[cut:]
            if clause:
                out.append(clause)
                self._emitted += 1
        return out

    def flush(self) -> list[str]:
        rest, self._buf = self._buf.strip(), ""
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
