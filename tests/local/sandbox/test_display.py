"""The one display sanitiser: no control or bidi character survives, nothing is lost."""

from __future__ import annotations

import re
import unicodedata

import pytest
from hypothesis import given
from hypothesis import strategies as st

from voco.local.sandbox.display import WRITE_PREVIEW_CHARS, describe_action, escape, quote

pytestmark = pytest.mark.timeout(60)

_UNSAFE = {"Cc", "Cf", "Cs", "Zl", "Zp"}
_ESC = re.compile(r"\\(x[0-9a-f]{2}|u[0-9a-f]{4}|U[0-9a-f]{8}|n|r|t|\\)")


def unescape(text: str) -> str:
    """Inverse of ``escape`` (test-side decoder: proves the escaping is lossless)."""

    def one(m: re.Match[str]) -> str:
        tok = m.group(1)
        simple = {"n": "\n", "r": "\r", "t": "\t", "\\": "\\"}
        return simple[tok] if tok in simple else chr(int(tok[1:], 16))

    return _ESC.sub(one, text)


# Every code point, surrogates included (they come from undecodable bytes).
anything = st.text(alphabet=st.characters(codec=None, exclude_categories=()), max_size=200)
_PIECES = ["\x1b", "[2J", "\x9b", "\r", "\n", "\x00", "\x7f", "\u202e", "\u2066", "\u2069"]
_PIECES += ["\u200e", "\u200f", "\u061c", "\ufeff", "\u2028", "\u00ad", "\\", "x1b", "a", " "]
attacks = st.lists(st.sampled_from(_PIECES), max_size=30).map("".join)


@given(st.one_of(anything, attacks))
def test_escaped_text_has_no_control_or_bidi_characters(text: str) -> None:
    out = escape(text)
    assert not [c for c in out if unicodedata.category(c) in _UNSAFE], repr(out)


@given(st.one_of(anything, attacks))
def test_escaping_is_lossless(text: str) -> None:
    assert unescape(escape(text)) == text


@given(st.text(alphabet=st.characters(exclude_categories=("Cc", "Cf", "Cs", "Zl", "Zp"))))
def test_safe_text_is_left_alone_except_backslashes(text: str) -> None:
    assert escape(text) == text.replace("\\", "\\\\")


def test_visible_forms() -> None:
    assert escape("a\x1b[2Jb") == "a\\x1b[2Jb"
    assert escape("\u202egnp.exe") == "\\u202egnp.exe"
    assert escape("x\ny\rz") == "x\\ny\\rz"
    assert escape("\x9b") == "\\x9b"
    assert escape("naïve 日本 🙂") == "naïve 日本 🙂"
    assert quote('say "hi"\x07') == '"say \\"hi\\"\\x07"'


@given(st.lists(st.one_of(anything, attacks), min_size=1, max_size=5))
def test_argv_display_keeps_every_word(argv: list[str]) -> None:
    shown = describe_action("execute_command", {"argv": argv})
    assert not [c for c in shown if unicodedata.category(c) in _UNSAFE - {"Cc"}]
    assert all(c == "\n" or unicodedata.category(c) != "Cc" for c in shown)
    body = shown.split(": ", 1)[1]
    words = re.findall(r'"((?:[^"\\]|\\.)*)"', body)
    assert [unescape(w.replace('\\"', '"')) for w in words] == argv


def test_spoofing_command_is_shown_whole_and_inert() -> None:
    command = "rm -rf src ; '" + "\x1b[2J\x1b[H" + "ls -la" + " " * 300 + "'"
    shown = describe_action("execute_command", {"command": command, "cwd": "."})
    assert "\x1b" not in shown
    assert shown.startswith("run (shell): rm -rf src ; '\\x1b[2J\\x1b[Hls -la")
    assert unescape(shown.splitlines()[0].removeprefix("run (shell): ")) == command


def test_long_write_content_says_what_is_not_shown() -> None:
    content = "x" * (WRITE_PREVIEW_CHARS + 10)
    shown = describe_action("write_file", {"path": "a\u202etxt", "content": content})
    assert 'write file: "a\\u202etxt"' in shown
    assert "[10 more characters not shown]" in shown


def test_unknown_action_and_odd_payload_values() -> None:
    shown = describe_action("\x1b]0;pwn\x07", {"n": 3, "k\x1b": ["\u202e"]})
    assert "\x1b" not in shown and "\u202e" not in shown and "\x07" not in shown
    assert "action: \\x1b]0;pwn\\x07" in shown


def test_log_lines_quoting_engine_text_are_escaped(caplog: pytest.LogCaptureFixture) -> None:
    """Attack (High 1, logs): an action name with ESC/bidi reaching the log."""
    import logging

    import voco.local.sandbox  # noqa: F401 - installs the filter

    log = logging.getLogger("voco.local.sandbox.core")
    with caplog.at_level(logging.ERROR, logger="voco.local.sandbox.core"):
        try:
            raise ValueError("bad \x1b]0;owned\x07")
        except ValueError:
            log.exception("sandbox failure on %s", "read\x1b[2J\u202efile")
    rec = caplog.records[-1]
    assert rec.getMessage() == "sandbox failure on read\\x1b[2J\\u202efile"
    assert rec.exc_text is not None and "\x1b" not in rec.exc_text
    assert "bad \\x1b]0;owned\\x07" in rec.exc_text
    assert "\x1b" not in caplog.text
