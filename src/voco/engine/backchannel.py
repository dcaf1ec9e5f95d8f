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
        "and", "then", "so",  # "and then?", "so…": carry on
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


def words_of(text: str) -> list[str]:
    """Lower-case words, bracketed noise tags dropped, hums spelt one way."""
    t = _BRACKETED.sub(" ", text.lower())  # "[coughing]", "(clicks)", "*sigh*"
    t = t.replace("uh-huh", "uhhuh").replace("mm-hmm", "mhm").replace("mm-hm", "mhm")
    return _WORD.findall(t)


def own_voice(words: list[str], reference: list[str]) -> bool:
    """Whether ``words`` are the reply's own words coming back through the
    user's speakers: the transcript is mostly one run of the words that were
    playing at the halt (``reference``). A run, not a bag of words: a request
    shares "the" and "is" with any reply, not three words in a row."""
    if not words or not reference:
        return False
    if len(words) == 1:
        w = words[0]
        return len(w) >= 3 and w not in STOP_WORDS and w in reference
    best = 0
    prev = [0] * (len(reference) + 1)
    for w in words:  # longest common run of words (tiny lists: a few seconds)
        cur = [0] * (len(reference) + 1)
        for j, r in enumerate(reference, 1):
            if w == r:
                cur[j] = prev[j - 1] + 1
                best = max(best, cur[j])
        prev = cur
    return best >= 2 and best >= 0.6 * len(words)


def classify(text: str, reference: list[str] | None = None) -> Verdict:
    """RESUME for noise, a backchannel or the reply's own echo (``reference``:
    the words playing at the halt), CUT for real words."""
    words = words_of(text)
    if " ".join(words) in NOISE_PHRASES:
        return Verdict.RESUME
    if reference and own_voice(words, reference):
        return Verdict.RESUME
    if any(w in STOP_WORDS for w in words):
        return Verdict.CUT
    said = [w for w in words if not _hum(w)]  # hums count as nothing, however many
    if len(said) <= 4 and all(w in BACKCHANNEL_WORDS for w in said):
        return Verdict.RESUME
    return Verdict.CUT


def still_no_turn(final: str, reference: list[str], *, provisional: bool) -> bool:
    """After a resume, whether the utterance's final transcript is still no turn
    of its own. Resumed on its words: the final words must still read as a
    backchannel, noise or echo. Resumed on timing alone (a short burst, no words
    in time): only a stop word makes it a turn — what a recogniser makes of a
    cough or a leaked echo ("the price") is no request, and a real one that
    short nearly always holds "stop", "wait" or "no"."""
    if not provisional:
        return classify(final, reference) is Verdict.RESUME
    words = words_of(final)
    return own_voice(words, reference) or not any(w in STOP_WORDS for w in words)


def _hum(word: str) -> bool:
    """Spellings of humming the STT makes up: "mmhmm", "hmmm", "uh-uh-huh" —
    and letters with no vowel between them ("M-M-F", "FFF", "G-d"): what it
    writes for a hum or a breath it cannot spell. No stop word lacks a vowel."""
    if re.fullmatch(r"(m+|h+m+|m+h+m+|u+h+|a+h+|o+h+|e+r+m*|u+m+)+", word):
        return True
    return word not in ("a", "i") and not re.search(r"[aeiouy]", word)


@dataclass(frozen=True)
class BargeTimings:
    """``max_speech_ms``: speech that lasts longer is not a backchannel.
    ``max_wait_ms``: the latest decision after the halt (the STT may not answer
    in time: then the cut stands, as before issue 10).
    ``noise_quiet_ms`` / ``noise_max_speech_ms``: a burst of at most this much
    voice, followed by this much quiet, with no transcript yet, is taken as
    noise or a backchannel *provisionally* — the reply resumes without waiting
    for a slow recogniser, and the utterance's final words are judged again
    (real words then make it a turn of its own, which cuts the reply). The
    quiet outlasts any pause inside a phrase ("No, … stop.").
    ``snippet_quiet_ms``: after this much quiet the interruption's words so far
    are asked for at once (a *snippet* decode), not at the turn detector's
    pause (128 ms): the decode runs while the silence is still being
    confirmed. None: only the pause's and the final transcripts judge.
    ``confirm_quiet_ms``: a snippet that reads as a backchannel or noise
    resumes only once the speech it was taken from has been followed by this
    much quiet with no new voice (a snippet of "Okay, now open…" taken in the
    comma's pause is stale once the voice comes back); a snippet with real
    words cuts at once — a cut is always safe.
    ``poll_ms``: how often the timing rules are looked at while undecided."""

    max_speech_ms: int = 1200
    max_wait_ms: int = 2500
    noise_quiet_ms: int | None = None  # off by default: see the report in docs/protocol.md
    noise_max_speech_ms: int = 600
    snippet_quiet_ms: int | None = 64
    confirm_quiet_ms: int = 96
    poll_ms: int = 32


@dataclass
class BargeJudge:
    """One tentative halt, from ``halt_audio`` to its verdict."""

    halted_at: float  # clock time halt_audio went out
    onset_at: float  # clock time the speech was confirmed (≈ halted_at)
    timings: BargeTimings = BargeTimings()
    verdict: Verdict = Verdict.PENDING
    words: str | None = None  # the latest transcript of the interruption
    reference: list[str] | None = None  # the reply's words playing at the halt (echo)
    provisional: bool = False  # resumed on timing alone: the final words judge again
    speech_ended_at: float | None = None
    polled_at: float = 0.0
    decode_started_at: float | None = None  # when the words were asked for (trace)
    words_at: float | None = None  # when they came (trace)
    voice_end_at: float | None = None  # where the voice they cover ended (trace)
    asked_end_ms: int | None = None  # stream ms of the voice end a snippet was asked at
    snippet: tuple[int, Verdict] | None = None  # (voice end it was taken at, its reading)

    def heard(self, text: str, now: float, *, final: bool = False) -> Verdict:
        """A transcript of the interruption: speculative (at the first pause) or
        final. A speculative backchannel resumes at once — the gap is what the
        user notices; if the speech then goes on, the adapter halts again and the
        whole utterance is judged afresh."""
        if self.verdict is not Verdict.PENDING:
            return self.verdict
        self.words, self.words_at = text, now
        return self._decide(classify(text, self.reference))

    def wants_words(self, *, quiet_ms: int, voice_end_ms: int) -> bool:
        """Whether to ask for a snippet decode now: the voice has been quiet for
        ``snippet_quiet_ms`` since ``voice_end_ms`` (stream time of the last
        voiced frame) and no snippet was asked for at that voice end yet."""
        t = self.timings
        return (
            self.verdict is Verdict.PENDING
            and t.snippet_quiet_ms is not None
            and quiet_ms >= t.snippet_quiet_ms
            and voice_end_ms != self.asked_end_ms
        )

    def asked(self, now: float, voice_end_ms: int) -> None:
        self.asked_end_ms = voice_end_ms
        self.decode_started_at = now

    def snippet_heard(self, text: str, now: float, voice_end_ms: int) -> Verdict:
        """A snippet's words (taken at ``voice_end_ms``): real words cut now;
        a backchannel, noise or echo waits in :meth:`poll` for the quiet that
        confirms the speech it was taken from is over."""
        if self.verdict is not Verdict.PENDING:
            return self.verdict
        self.words, self.words_at = text, now
        v = classify(text, self.reference)
        if v is Verdict.CUT:
            return self._decide(v)
        self.snippet = (voice_end_ms, v)
        return Verdict.PENDING

    def nothing_heard(self) -> Verdict:
        """The STT found no words in the speech: noise."""
        if self.verdict is Verdict.PENDING:
            return self._decide(Verdict.RESUME)
        return self.verdict

    def poll(
        self, now: float, *, in_speech: bool, quiet_ms: int = 0, voice_end_ms: int | None = None
    ) -> Verdict:
        """Decide on timing alone. ``in_speech``: the utterance has not ended;
        ``quiet_ms``: how long the microphone has been without voice (the
        turn detector's count, stream time). Long speech is a real turn; a
        short burst gone quiet, with no words yet, resumes provisionally; a
        backchannel snippet resumes once ``voice_end_ms`` (stream time of the
        last voiced frame) is still the one it was taken at and the quiet is
        confirmed; no words in time at all, a cut."""
        if self.verdict is not Verdict.PENDING:
            return self.verdict
        self.polled_at = now
        t = self.timings
        if not in_speech and self.speech_ended_at is None:  # the utterance ended
            self.speech_ended_at = now - quiet_ms / 1000
        last_voice = (
            self.speech_ended_at if self.speech_ended_at is not None else now - quiet_ms / 1000
        )
        voiced_ms = (last_voice - self.onset_at) * 1000
        quiet = (now - last_voice) * 1000
        if voiced_ms > t.max_speech_ms:
            return self._decide(Verdict.CUT)
        if (
            self.snippet is not None
            and self.snippet[0] == voice_end_ms
            and quiet_ms >= t.confirm_quiet_ms
        ):  # the snippet covers the whole interruption: no voice since
            return self._decide(self.snippet[1])
        timing = t.noise_quiet_ms is not None and quiet >= t.noise_quiet_ms
        if self.words is None and timing and voiced_ms <= t.noise_max_speech_ms:
            self.provisional = True
            return self._decide(Verdict.RESUME)
        if (now - self.halted_at) * 1000 >= t.max_wait_ms:
            return self._decide(Verdict.CUT)
        return Verdict.PENDING

    def next_poll_at(self) -> float | None:
        if self.verdict is not Verdict.PENDING:
            return None
        give_up = self.halted_at + self.timings.max_wait_ms / 1000
        return min(give_up, max(self.polled_at, self.halted_at) + self.timings.poll_ms / 1000)

    def _decide(self, v: Verdict) -> Verdict:
        self.verdict = v
        return v
