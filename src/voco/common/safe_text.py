"""Which characters may reach a person as themselves, and the visible escape for
the rest: one rule for the sandbox's approval prompts and logs
(:mod:`voco.local.sandbox.display`, which says why) and the engine's activity
view (:func:`voco.protocol.activity.plain`). In ``common`` because both
runtimes use it and neither may import the other.
"""

from __future__ import annotations

import unicodedata

# Categories that never render as themselves: controls, format characters
# (bidi marks, overrides and isolates, zero-width joiners and spaces, BOM…),
# surrogates, and line/paragraph separators.
_UNSAFE_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp"})
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t", "\\": "\\\\"}


def is_unsafe(ch: str) -> bool:
    """True if ``ch`` could move the cursor, reorder text or be invisible."""
    return ch in _NAMED or unicodedata.category(ch) in _UNSAFE_CATEGORIES


def _escape_char(ch: str) -> str:
    named = _NAMED.get(ch)
    if named is not None:
        return named
    code = ord(ch)
    if code < 0x100:
        return f"\\x{code:02x}"
    if code < 0x10000:
        return f"\\u{code:04x}"
    return f"\\U{code:08x}"


def escape(text: str, keep: frozenset[str] = frozenset()) -> str:
    """``text`` with every unsafe character (and backslash) as a visible escape;
    characters in ``keep`` stay as they are (a multi-line view keeps its newlines)."""
    if not any(is_unsafe(ch) and ch not in keep for ch in text):
        return text
    return "".join(_escape_char(ch) if is_unsafe(ch) and ch not in keep else ch for ch in text)
