"""Written reply text → the words the TTS should say (pure).

The page and ``agent.delta`` carry the text as written — ``README.md``,
``src/voco/engine``, ``parse_config`` — because that is what a developer reads
and copies. A TTS reading it literally says "readme md", "src voco engine" or
spells "parse underscore config", so each clause is rendered for the ear just
before synthesis: file names say their dot, paths their slashes, identifiers
lose their underscores (the spelling helpers of
:mod:`voco.agent.spoken_names`). Nothing else in the sentence changes; the
stored reply stays the written text.
"""

from __future__ import annotations

import re

from voco.agent.spoken_names import speak_identifier, speak_name

# name.ext or a/b(/c…) path, not a URL, not a number like 3.5, not "e.g."
_PATHISH = re.compile(
    r"(?<![\w/:.@])"
    r"(?:\.?[A-Za-z0-9_\-]+/)*\.?[A-Za-z0-9_\-]+"
    r"(?:\.[A-Za-z][A-Za-z0-9]{0,7})+"
    r"(?![\w/])"
    r"|(?<![\w/:.@])[\w.\-]*[\w\-](?:/[\w.\-]*[\w\-])+/?(?![\w/])"
    r"|(?<!\S)\.[A-Za-z][\w\-]+(?![\w/])"  # a dotfile: .gitignore, .env
)
_SNAKE = re.compile(r"(?<![\w.])[A-Za-z][A-Za-z0-9]*(?:_[A-Za-z0-9]+)+(?![\w.])")
_ABBREVIATIONS = frozenset({"e.g", "i.e", "etc", "vs", "a.m", "p.m"})


def _speak_token(token: str) -> str:
    parts = [p for p in token.rstrip("/").split("/") if p]
    if not parts:
        return token
    return " slash ".join(speak_name(p) for p in parts)


def _replace_path(m: re.Match[str]) -> str:
    token = m.group(0)
    if token.lower() in _ABBREVIATIONS or re.fullmatch(r"[\d./]+", token):
        return token  # "e.g.", "1/2", "3.5"
    return _speak_token(token)


def speakable(text: str) -> str:
    """ "Open README.md in src/voco." → "Open README dot md in src slash voco."."""
    if "://" in text:  # URLs are left alone: reading them aloud is a different problem
        return text
    text = _PATHISH.sub(_replace_path, text)
    return _SNAKE.sub(lambda m: speak_identifier(m.group(0)), text)
