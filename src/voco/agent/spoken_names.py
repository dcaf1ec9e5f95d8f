"""File names in speech, both ways: what the user said → a real path, and a path → words.

A speech recogniser writes "main dot py", "Main.py", "read me", "set up dot c f g"
or "utils slash io dot pie" for names that exist on disk as ``main.py``,
``README.md``, ``setup.cfg`` and ``utils/io.py``. So a spoken name is never used
as a path directly: :func:`normalise_spoken_name` turns it into a *guess*, and
:func:`rank_entries` scores that guess against the entries a ``list_dir`` really
returned (case-insensitive, separators ignored, extensions handled, a few
common spoken aliases like "source" for ``src``). The command mode then reads
the real path it matched.

The other direction, :func:`speak_name` / :func:`speak_path`, renders names for
text-to-speech: "README dot md", "router dot py in src slash voco", never a long
path read character by character.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass


def wordlist(text: str) -> tuple[str, ...]:
    """Space-separated vocabulary → tuple (keeps long word lists on a few lines)."""
    return tuple(text.split())


NUMBER_WORDS: dict[str, int] = {
    w: i
    for i, w in enumerate(
        wordlist(
            "zero one two three four five six seven eight nine ten eleven twelve thirteen "
            "fourteen fifteen sixteen seventeen eighteen nineteen twenty"
        )
    )
}

# Phrases a recogniser splits or mishears, before tokenising.
_PHRASES: tuple[tuple[str, str], ...] = (
    ("read me", "readme"),
    ("make file", "makefile"),
    ("docker file", "dockerfile"),
    ("change log", "changelog"),
    ("forward slash", "slash"),
    ("back slash", "slash"),
    ("backslash", "slash"),
    ("full stop", "dot"),
)
_SEPARATORS: dict[str, str] = {
    "dot": ".",
    "point": ".",
    "period": ".",
    "slash": "/",
    "underscore": "_",
    "dash": "-",
    "hyphen": "-",
    "minus": "-",
}
# Extensions as they are heard, after a "dot".
EXTENSION_ALIASES: dict[str, str] = {
    "pie": "py",
    "pi": "py",
    "python": "py",
    "jason": "json",
    "j son": "json",
    "yam": "yaml",
    "yamel": "yaml",
    "tommel": "toml",
    "tomo": "toml",
    "tomel": "toml",
    "tomal": "toml",
    "text": "txt",
    "markdown": "md",
    "javascript": "js",
    "typescript": "ts",
    "rust": "rs",
    "shell": "sh",
    "see": "c",
}
_EQUIVALENT_EXTENSIONS: dict[str, str] = {"yml": "yaml", "markdown": "md", "htm": "html"}
# Spoken words for common directory names.
_ALIASES: dict[str, tuple[str, ...]] = {
    "source": ("src",),
    "sources": ("src",),
    "documentation": ("docs", "doc"),
    "docs": ("doc",),
    "doc": ("docs",),
    "library": ("lib",),
    "libraries": ("lib", "libs"),
    "test": ("tests",),
    "tests": ("test",),
    "script": ("scripts",),
    "scripts": ("script",),
    "configuration": ("config", "conf"),
    "config": ("conf", "configuration"),
    "binary": ("bin",),
    "binaries": ("bin",),
    "package": ("pkg",),
    "packages": ("pkg", "packages"),
}

STRONG_MATCH = 0.9  # good enough to stop looking further
ACCEPT_MATCH = 0.72  # good enough to use when nothing better was found
AMBIGUITY_MARGIN = 0.03  # two scores this close: ask, do not guess


@dataclass(frozen=True)
class Entry:
    """One directory entry as ``list_dir`` reported it."""

    name: str
    is_dir: bool


@dataclass(frozen=True)
class Match:
    score: float
    entry: Entry


def _merge_letters(tokens: list[str]) -> list[str]:
    """Spelled letters ("c f g", "s r c") become one token ("cfg", "src")."""
    out: list[str] = []
    run: list[str] = []
    for tok in [*tokens, ""]:
        if len(tok) == 1 and tok.isalpha():
            run.append(tok)
            continue
        if len(run) >= 2:
            out.append("".join(run))
        else:
            out.extend(run)
        run = []
        if tok:
            out.append(tok)
    return out


def normalise_spoken_name(spoken: str, *, digits: bool = False) -> str:
    """A spoken file or folder name → a lowercase path-like guess.

    "Utils slash IO dot py" → "utils/io.py", "the read me" stays "the readme"
    (articles are the intent parser's job), "set up dot c f g" → "set up.cfg"
    (spaces are kept; matching ignores them). ``digits`` turns number words into
    digits ("test two dot py" → "test 2.py").
    """
    text = spoken.lower().replace("\u2019", "'").strip()
    text = re.sub(r"\b([a-z])-(?=[a-z]\b)", r"\1 ", text)  # "s-r-c" → "s r c"
    for phrase, replacement in _PHRASES:
        text = re.sub(rf"\b{phrase}\b", replacement, text)
    tokens = _merge_letters(text.split())
    out = ""
    glue = True  # no space before the next token (start, or after a separator)
    after_dot = False
    for tok in tokens:
        if tok in _SEPARATORS:
            out = out.rstrip() + _SEPARATORS[tok]
            glue, after_dot = True, tok in ("dot", "point", "period")
            continue
        if after_dot:
            tok = EXTENSION_ALIASES.get(tok, tok)
        elif digits and tok in NUMBER_WORDS:
            tok = str(NUMBER_WORDS[tok])
        out += tok if glue else " " + tok
        glue = after_dot = False
    # an extension the recogniser already wrote after a dot ("Cargo.tomal")
    return re.sub(
        r"\.([a-z]+)\b", lambda m: "." + EXTENSION_ALIASES.get(m.group(1), m.group(1)), out
    ).strip()


def with_digits(text: str) -> str:
    """Number words → digits, token by token ("test two.py" → "test 2.py")."""
    return re.sub(r"\b[a-z]+\b", lambda m: str(NUMBER_WORDS.get(m.group(0), m.group(0))), text)


def split_components(normalised: str) -> list[str]:
    """ "./src/voco/" → ["src", "voco"]; "." or "" → []."""
    return [c.strip() for c in normalised.split("/") if c.strip() not in ("", ".")]


def _compact(s: str) -> str:
    return re.sub(r"[\s_\-]+", "", s.lower()).lstrip(".")


def _split_ext(name: str) -> tuple[str, str]:
    i = name.rfind(".")
    if i > 0 and 1 <= len(name) - i - 1 <= 6 and name[i + 1 :].isalnum():
        return name[:i], name[i + 1 :].lower()
    return name, ""


def _ext_equal(a: str, b: str) -> bool:
    return _EQUIVALENT_EXTENSIONS.get(a, a) == _EQUIVALENT_EXTENSIONS.get(b, b)


def _ratio(a: str, b: str) -> float:
    return difflib.SequenceMatcher(None, a, b).ratio()


def _name_tokens(name: str) -> set[str]:
    parts = re.split(r"[\s_\-.]+|(?<=[a-z])(?=[A-Z])", name)
    return {p.lower() for p in parts if p}


def _raw_score(spoken: str, name: str) -> float:
    if _compact(spoken) == _compact(name):
        return 1.0
    s_stem, s_ext = _split_ext(spoken)
    n_stem, n_ext = _split_ext(name)
    cs, cn = _compact(s_stem), _compact(n_stem)
    if not cs:
        return 0.0
    if s_ext:
        stem = 1.0 if cs == cn else _ratio(cs, cn)
        if _ext_equal(s_ext, n_ext):
            return stem * 0.98
        return stem * 0.7
    if cs == cn:
        return 0.95  # "readme" ~ "README.md": the extension was not said
    best = max(_ratio(cs, cn), _ratio(cs, _compact(name))) * 0.9
    if cs in _name_tokens(n_stem):
        best = max(best, 0.8)  # "config" ~ "app_config.toml"
    if len(cs) >= 4 and cn.startswith(cs):
        best = max(best, 0.78)  # "config" ~ "configuration.md"
    return best


def name_score(spoken: str, name: str) -> float:
    """How well a normalised spoken name matches a real entry name, 0..1."""
    score = _raw_score(spoken, name)
    stem, ext = _split_ext(spoken)
    for alias in _ALIASES.get(_compact(stem), ()):
        score = max(score, _raw_score(alias + ("." + ext if ext else ""), name) * 0.95)
    return score


def rank_entries(spoken: str, entries: list[Entry], want: str = "") -> list[Match]:
    """Entries sorted best first; ``want`` is "file", "dir" or "" (either)."""
    variants = {spoken, with_digits(spoken)}
    matches = []
    for entry in entries:
        if (want == "dir" and not entry.is_dir) or (want == "file" and entry.is_dir):
            continue
        score = max(name_score(v, entry.name) for v in variants)
        matches.append(Match(score, entry))
    matches.sort(key=lambda m: (-m.score, m.entry.name))
    return matches


def has_extension(normalised: str) -> bool:
    last = split_components(normalised)[-1:] or [""]
    return bool(_split_ext(last[0])[1])


# ---------------------------------------------------------------------------- speaking


def speak_identifier(name: str) -> str:
    """ "parse_config" → "parse config" (underscores read aloud are noise)."""
    return " ".join(re.split(r"[_\s]+", name)).strip() or name


def speak_name(name: str) -> str:
    """ "README.md" → "README dot md", "spoken_names.py" → "spoken names dot py"."""
    spoken = re.sub(r"[_\-]+", " ", name)
    spoken = re.sub(r"\.", " dot ", spoken)
    return " ".join(spoken.split()) or name


def speak_path(path: str) -> str:
    """A path as a listener wants it: the name first, then where it lives, briefly."""
    parts = [p for p in path.split("/") if p not in ("", ".")]
    if not parts:
        return "the project root"
    name = speak_name(parts[-1])
    parents = parts[:-1]
    if not parents:
        return name
    if len(parents) <= 2:
        return f"{name} in {' slash '.join(speak_name(p) for p in parents)}"
    return f"{name} in the {speak_name(parents[-1])} folder"
