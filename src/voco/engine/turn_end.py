"""When a pause ends the user's turn (sans-I/O; stream time in, decisions out).

Why more than silence: a fixed end-of-turn silence is either slow (people
leave ~200 ms between turns) or cuts the user off mid-sentence (a hesitation
before the content word — "read the first ten lines of … the config file" —
easily lasts 600 ms). The words tell the two apart: the speculative transcript
the listener computes once the user pauses says whether the sentence is done.
A sentence ending in a preposition, an article, "called", a conjunction, a
filler, an unfinished number or a spoken file name ("main dot") is not done,
so the silence waited adapts:

* **complete** → ``complete_ms`` (≈160 ms): answer as soon as a person would;
* **unsure** (or no transcript from the recogniser) → ``unsure_ms``;
* **incomplete** → ``incomplete_ms`` (≈1 s): let the user find the word.

Until the transcript is known the pause waits as for *incomplete*: a slow
recogniser delays the decision rather than cutting the user off.

No acoustic turn-completion model is used (see docs/architecture.md, "Turn
end"). Everything here is a pure function of text and stream milliseconds, so
the listener feeds it from the audio reader and the tests from a list.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass


class Completeness(enum.Enum):
    COMPLETE = "complete"
    UNSURE = "unsure"
    INCOMPLETE = "incomplete"


def _set(words: str) -> frozenset[str]:
    return frozenset(words.split())


# words a finished sentence does not end on
_DANGLING = _set(
    """
    a an the my your our their his her its these those some any every each
    another which whose
    of to in into onto on at for from with without by about under over after
    before between through inside outside within than as via per
    called named titled
    and or but nor because if unless while whereas plus minus
    is are was were be been am can could will would should shall may might must
    let's i'm
    um uh er erm uhm hmm mm ah eh
    point dot slash dash underscore hyphen colon comma
    """
)
# a number still being said: "one hundred and", "three point"
_NUMBER_TAIL = _set(
    "hundred thousand million billion twenty thirty forty fifty sixty seventy eighty ninety"
)
# verbs that want an object: "open" alone is not a request yet
_TRANSITIVE = _set(
    "open read show list find search delete remove create write rename move copy "
    "explain tell give edit change"
)
_WORD = re.compile(r"[a-z0-9']+")


def completeness(text: str) -> Completeness:
    """How finished ``text`` sounds as a spoken request.

    Whisper punctuates by itself: a trailing ``...``, ``-`` or ``,`` is its own
    hint that the voice trailed off; ``?`` or ``!`` that it did not. A ``.`` it
    puts after almost anything, so it says nothing.
    """
    t = text.strip()
    if not t:
        return Completeness.UNSURE
    if t.endswith(("...", "…", "-", "—", "–", ",", ";", ":")):
        return Completeness.INCOMPLETE
    words = _WORD.findall(t.lower())
    if not words:
        return Completeness.UNSURE
    last = words[-1]
    if last in _DANGLING:
        return Completeness.INCOMPLETE
    if t.endswith(("?", "!")):
        return Completeness.COMPLETE
    if len(words) == 1 and last in _TRANSITIVE:
        return Completeness.INCOMPLETE
    if last in _NUMBER_TAIL:
        return Completeness.UNSURE  # "line twenty" is done; "line twenty-" may not be
    if len(words) == 1:
        return Completeness.UNSURE  # "yeah", "so": a word alone may be a start
    return Completeness.COMPLETE


@dataclass(frozen=True)
class TurnEndConfig:
    """Silences waited after the last voiced frame (``voco serve`` flags:
    ``--complete-silence-ms``, ``--end-silence-ms``, ``--incomplete-silence-ms``)."""

    complete_ms: int = 160
    unsure_ms: int = 320
    incomplete_ms: int = 1000

    def __post_init__(self) -> None:
        if not 32 <= self.complete_ms <= self.unsure_ms <= self.incomplete_ms <= 5000:
            raise ValueError(
                "need 32 <= complete silence <= end silence <= incomplete silence <= 5000 ms"
            )

    def silence_for(self, c: Completeness | None) -> int:
        if c is Completeness.COMPLETE:
            return self.complete_ms
        if c is Completeness.INCOMPLETE:
            return self.incomplete_ms
        return self.unsure_ms


class TurnEnd:
    """One utterance's pauses: how long the current one must last to end the turn.

    The listener calls :meth:`paused` when the detector reports a pause,
    :meth:`transcript` when the speculative transcript of it is known (``None``:
    the recogniser has none), :meth:`resumed` when speech comes back, and asks
    :meth:`due` with the stream time of each later frame (and right when the
    transcript arrives). All times are stream milliseconds.
    """

    def __init__(self, config: TurnEndConfig | None = None) -> None:
        self.config = config or TurnEndConfig()
        self.voiced_end_ms: int | None = None  # end of the last voiced frame, while paused
        self.text: str | None = None
        self.known = False  # the transcript of this pause arrived (maybe None)
        self.level: Completeness | None = None

    @property
    def paused(self) -> bool:
        return self.voiced_end_ms is not None

    def pause(self, voiced_end_ms: int) -> None:
        self.voiced_end_ms = voiced_end_ms
        self.text, self.known, self.level = None, False, None

    def transcript(self, text: str | None) -> Completeness | None:
        """The pause's speculative transcript; returns how complete it is."""
        self.known = True
        self.text = text
        self.level = None if text is None else completeness(text)
        return self.level

    def resume(self) -> None:
        self.voiced_end_ms = None
        self.text, self.known, self.level = None, False, None

    def silence_needed(self) -> int:
        if not self.known:
            return self.config.incomplete_ms
        return self.config.silence_for(self.level)

    def due(self, now_ms: int) -> bool:
        """Whether the pause, as long as it is at ``now_ms``, ends the turn."""
        if self.voiced_end_ms is None:
            return False
        return now_ms - self.voiced_end_ms >= self.silence_needed()
