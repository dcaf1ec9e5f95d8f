"""Make engine-supplied text safe to show to a person: one sanitiser, used everywhere.

Why: the engine is untrusted, and an approval prompt is only worth something if
what the user reads is what will run. A command carrying ``ESC[2J`` can clear
the terminal and paint a harmless ``ls -la`` over ``rm -rf src``; a U+202E
(right-to-left override) reorders the characters the user sees; a lone ``\\r``
or a page of newlines pushes the real text off screen. So every string the
engine chose — a command, a path, a reason that quotes them — goes through
:func:`escape` before it reaches a terminal, a log line or the page.

The escaping is *visible and reversible*: every character that could change how
text is laid out (C0/C1 controls, DEL, bidi embeddings/overrides/isolates,
zero-width and other format characters, line/paragraph separators, lone
surrogates from undecodable bytes) becomes a Python-style escape (``\\x1b``,
``\\n``, ``\\u202e``); a literal backslash becomes ``\\\\``, so the escaped text
decodes to exactly the original and nothing is dropped or merged. Ordinary
printable text, including non-Latin scripts and emoji, is left alone.

:func:`describe_action` renders a whole request for an approval prompt:
commands and paths are shown complete (the command cap is 64 KiB); only the
*content* of a ``write_file`` is abbreviated, and then it says how much is not
shown — never a silent cut.

:class:`EscapingFilter` does the same for log records of the loggers that
format engine text (action names, paths, reasons); :func:`install_log_escaping`
attaches it to them, so the handler (configured by the CLI) never sees raw
control characters.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from typing import Any

from voco.common.safe_text import escape, is_unsafe

__all__ = [
    "EscapingFilter",
    "describe_action",
    "escape",
    "install_log_escaping",
    "is_unsafe",
    "quote",
]

WRITE_PREVIEW_CHARS = 2000


def quote(text: str) -> str:
    """``escape`` inside double quotes, with ``"`` escaped: one unambiguous token."""
    return '"' + escape(text).replace('"', '\\"') + '"'


def _value(value: Any) -> str:
    if isinstance(value, str):
        return quote(value)
    try:
        return escape(json.dumps(value, ensure_ascii=False, default=repr))
    except (TypeError, ValueError):
        return escape(repr(value))


def describe_action(action: str, payload: Mapping[str, Any]) -> str:
    """The complete, escaped action for a person to approve (multi-line)."""
    lines: list[str] = []
    if action == "execute_command":
        command, argv = payload.get("command"), payload.get("argv")
        if isinstance(command, str):
            lines.append(f"run (shell): {escape(command)}")
        elif isinstance(argv, list):
            lines.append("run (no shell): " + " ".join(_value(a) for a in argv))
        rest = {k: v for k, v in payload.items() if k not in ("command", "argv")}
    elif action == "write_file":
        path, content = payload.get("path"), payload.get("content")
        lines.append(f"write file: {_value(path)}")
        if isinstance(content, str):
            shown = content[:WRITE_PREVIEW_CHARS]
            lines.append(f"content ({len(content)} characters): {quote(shown)}")
            if len(content) > len(shown):
                lines.append(f"[{len(content) - len(shown)} more characters not shown]")
        rest = {k: v for k, v in payload.items() if k not in ("path", "content")}
    else:
        lines.append(f"action: {escape(action)}")
        rest = dict(payload)
    for key in sorted(rest, key=str):
        lines.append(f"{escape(str(key))}: {_value(rest[key])}")
    return "\n".join(lines)


class EscapingFilter(logging.Filter):
    """Escapes a record's message and traceback; keeps the traceback's own line breaks."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except (TypeError, ValueError):
            message = f"{record.msg!r} % {record.args!r}"
        record.msg, record.args = escape(message), None
        if record.exc_info and not record.exc_text:
            text = logging.Formatter().formatException(record.exc_info)
            record.exc_text = "\n".join(escape(line) for line in text.split("\n"))
        return True


# Loggers whose messages carry text the engine chose.
ENGINE_TEXT_LOGGERS = (
    "voco.local.sandbox.core",
    "voco.local.mcp_bridge",
    "voco.local.mcp_server",
    "voco.local.talk",
)


def install_log_escaping(names: tuple[str, ...] = ENGINE_TEXT_LOGGERS) -> None:
    """Attach one :class:`EscapingFilter` to each named logger (idempotent)."""
    for name in names:
        logger = logging.getLogger(name)
        if not any(isinstance(f, EscapingFilter) for f in logger.filters):
            logger.addFilter(EscapingFilter())
