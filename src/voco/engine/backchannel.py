"""Was that barge-in a real interruption? (sans-I/O; the caller passes ``now``).

The seed's rule halts the reply after 64 ms of speech, long before anyone can
know what the words are: a "mhm", a cough or a keyboard clack halts it as
surely as "wait". So the halt is *tentative*: :class:`BargeJudge` watches the
interruption for a few hundred milliseconds and decides

* ``RESUME`` — nothing intelligible (the STT heard no words, or only the
  phrases Whisper invents for noise), or only a backchannel ("mhm", "yeah",
  "okay", "go on", …): the reply plays on from where it stopped;
* ``CUT`` — anything else: a stop word, a request, speech that goes on longer
  than a backchannel can last, or no answer from the STT in time.

Why a module of its own: the decision is a pure function of the words and of
timing, and must be tested with a fake clock; the session only feeds it events
and executes what it returns.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass

# Words that, alone or together, only say "I'm listening" (a backchannel).
BACKCHANNEL_WORDS = frozenset(
    {
        "mhm", "mm", "mmm", "hmm", "hm", "uh", "huh", "um", "umm", "ah", "oh", "aha",
        "yeah", "yes", "yep", "yup", "ya", "okay", "ok", "right", "alright", "sure",
        "cool", "nice", "great", "good", "fine", "gotcha", "i", "see", "got", "it",
        "go", "on", "uhhuh", "mhmm", "ahh", "wow", "true", "exactly", "indeed",
    }
)  # fmt: skip
# Words that make any utterance a real interruption, however short.
STOP_WORDS = frozenset(
    {"no", "nope", "wait", "stop", "hold", "hang", "cancel", "quiet", "shut", "pause", "but",
     "actually", "sorry", "what", "why", "how", "don't", "dont", "not", "enough", "halt"}
)  # fmt: skip
# What Whisper writes for noise, coughs and clicks (it invents words from silence).
NOISE_PHRASES = frozenset(
    {"", "you", "thank you", "thanks", "bye", "cough", "coughing", "click", "clicking",
     "noise", "music", "silence", "blank audio", "inaudible", "applause", "laughter",
     "sigh", "breathing", "static", "keyboard clicking", "typing"}
)  # fmt: skip

_WORD = re.compile(r"[a-z']+")
_BRACKETED = re.compile(r"[\[(*][^\])*]*[\])*]")


class Verdict(enum.Enum):
    PENDING = "pending"
    RESUME = "resume"
    CUT = "cut"


def classify(text: str) -> Verdict:
    """RESUME for noise or a backchannel, CUT for real words."""
    t = _BRACKETED.sub(" ", text.lower())  # "[coughing]", "(clicks)", "*sigh*"
    t = t.replace("uh-huh", "uhhuh").replace("mm-hmm", "mhm").replace("mm-hm", "mhm")
    words = _WORD.findall(t)
    if " ".join(words) in NOISE_PHRASES:
        return Verdict.RESUME
    if any(w in STOP_WORDS for w in words):
        return Verdict.CUT
    if len(words) <= 4 and all(w in BACKCHANNEL_WORDS or _hum(w) for w in words):
        return Verdict.RESUME
    return Verdict.CUT


def _hum(word: str) -> bool:
    """Spellings of humming the STT makes up: "mmhmm", "hmmm", "uh-uh-huh"."""
    return bool(re.fullmatch(r"(m+|h+m+|m+h+m+|u+h+|a+h+|o+h+|e+r+m*|u+m+)+", word))


@dataclass(frozen=True)
class BargeTimings:
    """``max_speech_ms``: speech that lasts longer is not a backchannel.
    ``max_wait_ms``: the latest decision after the halt (the STT may not answer
    in time: then the cut stands, as before issue 10)."""

    max_speech_ms: int = 1200
    max_wait_ms: int = 2500


@dataclass
class BargeJudge:
    """One tentative halt, from ``halt_audio`` to its verdict."""

    halted_at: float  # clock time halt_audio went out
    onset_at: float  # clock time the speech was confirmed (≈ halted_at)
    timings: BargeTimings = BargeTimings()
    verdict: Verdict = Verdict.PENDING
    speech_ended_at: float | None = None
    words: str | None = None  # the latest transcript of the interruption
    polled_at: float = 0.0

    def speech_ended(self, now: float) -> None:
        self.speech_ended_at = now

    def heard(self, text: str, now: float, *, final: bool = False) -> Verdict:
        """A transcript of the interruption: speculative (at the first pause) or
        final. A speculative backchannel resumes at once — the gap is what the
        user notices; if the speech then goes on, the adapter halts again and the
        whole utterance is judged afresh."""
        if self.verdict is not Verdict.PENDING:
            return self.verdict
        self.words = text
        return self._decide(classify(text))

    def _speech_ms(self, now: float) -> float:
        end = self.speech_ended_at if self.speech_ended_at is not None else now
        return (end - self.onset_at) * 1000

    def nothing_heard(self) -> Verdict:
        """The STT found no words in the speech: noise."""
        if self.verdict is Verdict.PENDING:
            return self._decide(Verdict.RESUME)
        return self.verdict

    def poll(self, now: float, *, in_speech: bool) -> Verdict:
        """Decide on time alone: long speech is a real turn; no words in time, a cut."""
        if self.verdict is not Verdict.PENDING:
            return self.verdict
        self.polled_at = now
        if in_speech and self._speech_ms(now) > self.timings.max_speech_ms:
            return self._decide(Verdict.CUT)
        if (now - self.halted_at) * 1000 >= self.timings.max_wait_ms:
            return self._decide(Verdict.CUT)
        if not in_speech and self.speech_ended_at is None:
            self.speech_ended_at = now
        return Verdict.PENDING

    def next_poll_at(self) -> float | None:
        if self.verdict is not Verdict.PENDING:
            return None
        long_speech = self.onset_at + self.timings.max_speech_ms / 1000
        give_up = self.halted_at + self.timings.max_wait_ms / 1000
        if self.speech_ended_at is None and long_speech > self.polled_at:
            return min(long_speech, give_up)
        return give_up

    def _decide(self, v: Verdict) -> Verdict:
        self.verdict = v
        return v
