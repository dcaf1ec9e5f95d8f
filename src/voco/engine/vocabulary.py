"""The project's names, learned from the tool results a session already sees (sans-I/O).

Why: a recogniser that has never heard of ``spoken_names.py`` or ``README.md``
writes "spoken names dot pie" or "read the file". The conversation keeps
touching the project — ``list_dir`` entries, paths it reads, symbols a
``search_text`` found — so every resolved MCP result is fed here
(:meth:`ProjectVocabulary.observe`), and the session hands the best names to
the STT (Whisper prompt, Deepgram keyterms) and rewrites spoken forms in the
transcript to the project's spelling (:meth:`ProjectVocabulary.normalise`).

Bounded: at most ``capacity`` names, ranked by recency with a bonus for
frequency; one observation adds at most ``per_result`` names. No I/O, no
clock: "recent" is the observation counter.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from voco.agent.spoken_names import normalise_spoken_name, wordlist

_NAME = re.compile(r"^[\w][\w.\-]{1,63}$")
_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{2,63}$")
_DEFINES = re.compile(
    r"\b(?:def|class|function|fn|func|struct|interface|type|enum|trait|const|let|var)\s+"
    r"([A-Za-z_][A-Za-z0-9_]{2,63})"
)
_EXT = re.compile(r"\.[A-Za-z][A-Za-z0-9]{0,7}$")
# Words before a name that make a bare "read me" a name, not a verb phrase.
_NAME_CONTEXT = frozenset(
    wordlist("the a an open in of from to into at edit show called named file my this that")
)
_NAME_FOLLOWERS = frozenset(["file", "files", "folder", "directory", "module", "script"])
MAX_WINDOW = 6  # spoken words one name may take ("spoken names dot py" is 4)
FREQUENCY_WEIGHT = 2  # one extra sighting counts like this many observations of recency
# A one-word file name heard slightly wrong ("vocabularity.py") is the known
# name with the same extension whose stem is at least this similar, if no
# other known name comes within FUZZY_MARGIN of it.
FUZZY_MATCH = 0.8
FUZZY_MARGIN = 0.05


@dataclass
class _Seen:
    count: int
    last: int


def _compact(s: str) -> str:
    return re.sub(r"[\s_\-]+", "", s.lower())


def _stem(name: str) -> str:
    return _EXT.sub("", name) if not name.startswith(".") else name


class ProjectVocabulary:
    def __init__(self, *, capacity: int = 200, per_result: int = 80) -> None:
        self.capacity = capacity
        self.per_result = per_result
        self._seen: dict[str, _Seen] = {}
        self._tick = 0

    # ------------------------------------------------------------- learning

    def add(self, names: list[str]) -> None:
        """One observation: these names were just seen (first ones count most)."""
        self._tick += 1
        for name in dict.fromkeys(n for n in names if _NAME.match(n) and not n.isdigit()):
            if len(self._seen) >= self.capacity and name not in self._seen:
                self._evict()
            seen = self._seen.get(name)
            if seen is None:
                self._seen[name] = _Seen(1, self._tick)
            else:
                seen.count += 1
                seen.last = self._tick

    def observe(self, action: str, payload: Mapping[str, Any], result: Any) -> None:
        """Names from one successful MCP call (anything malformed is ignored)."""
        names: list[str] = []
        path = payload.get("path")
        if isinstance(path, str):
            names.extend(p for p in path.split("/") if p not in ("", ".", ".."))
        res = result if isinstance(result, Mapping) else {}
        if action == "list_dir":
            for e in res.get("entries", ()) or ():
                if isinstance(e, Mapping) and isinstance(e.get("name"), str):
                    names.append(e["name"])
        elif action == "search_text":
            pattern = payload.get("pattern")
            if isinstance(pattern, str) and _IDENT.match(pattern):
                names.append(pattern)
            for m in res.get("matches", ()) or ():
                if not isinstance(m, Mapping):
                    continue
                if isinstance(m.get("path"), str):
                    names.append(m["path"].rsplit("/", 1)[-1])
                if isinstance(m.get("text"), str):
                    names.extend(_DEFINES.findall(m["text"]))
        if names:
            self.add(names[: self.per_result])

    def _score(self, s: _Seen) -> int:
        return s.last + FREQUENCY_WEIGHT * min(s.count, 10)

    def _evict(self) -> None:
        worst = min(self._seen, key=lambda n: self._score(self._seen[n]))
        del self._seen[worst]

    def terms(self, limit: int | None = None) -> list[str]:
        """Names best first (recent and frequent); the STT caps what it uses."""
        ranked = sorted(self._seen, key=lambda n: -self._score(self._seen[n]))
        return ranked[:limit] if limit is not None else ranked

    def __len__(self) -> int:
        return len(self._seen)

    # -------------------------------------------------------- normalising

    def normalise(self, transcript: str) -> str:
        """Spoken forms of known names → the project's spelling.

        "open the read me" → "open the README.md", "what does main dot py do"
        → "what does main.py do". Only names that were seen are written; a
        name said without its extension is rewritten only where it reads as a
        name (after "the", "open", … or before "file"), so "read me the first
        line" stays a request. Ambiguous matches (README.md and README.rst) are
        left as spoken.
        """
        if not self._seen:
            return transcript
        exact: dict[str, set[str]] = {}
        stems: dict[str, set[str]] = {}
        for name in self._seen:
            exact.setdefault(_compact(name), set()).add(name)
            stem = _stem(name)
            if stem != name:
                stems.setdefault(_compact(stem), set()).add(name)
        tokens = list(re.finditer(r"\S+", transcript))
        out: list[str] = []
        pos = 0
        i = 0
        while i < len(tokens):
            hit = self._match_at(tokens, i, exact, stems) or self._near_file(tokens, i)
            if hit is None:
                i += 1
                continue
            j, name = hit
            start, end = tokens[i].start(), tokens[j - 1].end()
            word = transcript[start:end]
            lead = len(word) - len(word.lstrip("\"'(«"))
            trail = re.search(r"[\"'),;:!?.»]*$", word)
            tail = word[trail.start() :] if trail else ""
            if tail.startswith(".") and name.endswith(tail.rstrip(",;:!?\"')»")):
                tail = ""
            out.append(transcript[pos : start + lead] + name + tail)
            pos = end
            i = j
        out.append(transcript[pos:])
        return "".join(out)

    def _near_file(self, tokens: list[re.Match[str]], i: int) -> tuple[int, str] | None:
        """Token ``i`` reads as a file name ("vocabularity.py"): the single known
        file of that extension it is near, as a one-token match."""
        guess = normalise_spoken_name(tokens[i].group().strip("\"'()«»,;:!?").rstrip("."))
        m = _EXT.search(guess)
        if m is None or " " in guess or "/" in guess:
            return None
        stem, ext = _compact(guess[: m.start()]), m.group().lower()
        if len(stem) < 4:
            return None
        scored = sorted(
            (
                (difflib.SequenceMatcher(None, stem, _compact(_stem(n))).ratio(), n)
                for n in self._seen
                if n.lower().endswith(ext) and _stem(n) != n
            ),
            reverse=True,
        )
        if not scored or scored[0][0] < FUZZY_MATCH:
            return None
        if len(scored) > 1 and scored[1][0] > scored[0][0] - FUZZY_MARGIN:
            return None
        return i + 1, scored[0][1]

    def _match_at(
        self,
        tokens: list[re.Match[str]],
        i: int,
        exact: dict[str, set[str]],
        stems: dict[str, set[str]],
    ) -> tuple[int, str] | None:
        before = tokens[i - 1].group().lower().strip(",;:") if i > 0 else ""
        for j in range(min(len(tokens), i + MAX_WINDOW), i, -1):  # longest first
            spoken = " ".join(t.group() for t in tokens[i:j])
            spoken = spoken.strip("\"'()«»,;:!?").rstrip(".")
            if not spoken:
                continue
            key = _compact(normalise_spoken_name(spoken))
            names = exact.get(key, set())
            if len(names) == 1:
                name = next(iter(names))
                # a bare word equal to a plain lowercase name needs no rewrite
                if "." in name or j - i > 1 or not name.islower():
                    return j, name
            candidates = stems.get(key, set())
            if len(candidates) != 1:
                continue
            after = tokens[j].group().lower().strip(",;:.") if j < len(tokens) else ""
            in_context = before in _NAME_CONTEXT or after in _NAME_FOLLOWERS
            spoken_words = j - i
            name = next(iter(candidates))
            if in_context and (spoken_words > 1 or not _stem(name).islower()):
                return j, name
        return None
