"""Which git configuration keys make git run a program — and a strict reader for them.

Why: allow-listed git (``diff``, ``log -p``, ``show``, ``blame``) runs programs
named in the repository's own config: ``diff.external``, ``diff.<drv>.textconv``
and ``filter.<drv>.clean`` for paths the attributes point at, ``gpg.program``
for signatures, ``core.fsmonitor``, pagers, aliases. A cloned repository
chooses those. The runtime disables system and global config
(``GIT_CONFIG_NOSYSTEM``, ``GIT_CONFIG_GLOBAL=/dev/null``) and ``git -c`` is
risky, so the only config git can read is the repository's local one; if that
defines none of these keys, nothing in it can start a program, and
``--ext-diff``/``--textconv`` have nothing to run. So instead of rewriting the
user's command line with ``--no-ext-diff --no-textconv`` (which would change
what they approved, and has no config equivalent for textconv), a repository
whose config defines any of them makes the command need approval.

The reader is deliberately strict: anything it can't parse, and any
``include``/``includeIf`` (the included file could be anywhere), counts as
dangerous.
"""

from __future__ import annotations

import re

# Whole sections whose every key names a program, a command or more config.
_SECTIONS = frozenset(
    {
        "alias",
        "filter",
        "pager",
        "difftool",
        "mergetool",
        "include",
        "includeif",
        "hook",
        "gpg",
        "credential",
        "sequence",
        "uploadpack",
        "interactive",
        "browser",
        "web",
    }
)
# section.key (lower-case, subsection dropped) that run something.
_KEYS = frozenset(
    {
        "diff.external",
        "diff.textconv",
        "diff.command",
        "merge.driver",
        "core.fsmonitor",
        "core.hookspath",
        "core.sshcommand",
        "core.pager",
        "core.editor",
        "core.askpass",
        "core.gitproxy",
        "core.alternaterefscommand",
        "remote.uploadpack",
        "remote.receivepack",
        "remote.vcs",
        "ssh.variant",
    }
)
_KEY_SUFFIXES = ("command", "program", "cmd", "textconv", "driver", "editor", "pager", "helper")

_HEADER = re.compile(r'\[\s*([A-Za-z0-9.-]+)\s*(?:"((?:[^"\\\n]|\\.)*)")?\s*\]')
_KEY = re.compile(r"([A-Za-z][A-Za-z0-9-]*)\s*(=?)")


def dangerous_key(section: str, subsection: str | None, key: str) -> bool:
    """Does ``[section "subsection"] key`` name something git would execute?"""
    sec, name = section.lower(), key.lower()
    base = sec.split(".", 1)[0]
    if base in _SECTIONS:
        return True
    return f"{base}.{name}" in _KEYS or name.endswith(_KEY_SUFFIXES)


def _value_continues(rest: str) -> tuple[bool, bool]:
    """Scan a value; returns (well formed, continues on the next line)."""
    quoted = False
    i = 0
    while i < len(rest):
        ch = rest[i]
        if ch == "\\":
            if i + 1 == len(rest):
                return True, True
            i += 2
            continue
        if ch == '"':
            quoted = not quoted
        elif ch in "#;" and not quoted:
            return True, False
        i += 1
    return not quoted, False


def dangerous_entries(text: str) -> list[str]:
    """``section.key`` of every dangerous entry; ``"unparsable"`` if unsure."""
    found: list[str] = []
    section: str | None = None
    subsection: str | None = None
    lines = text.split("\n")
    i = 0
    while i < len(lines):
        line = lines[i].strip()
        i += 1
        if line.startswith("["):
            m = _HEADER.match(line)
            if m is None:
                return [*found, "unparsable"]
            section, subsection = m.group(1), m.group(2)
            if "." in section and subsection is None:  # [section.sub] old syntax
                section, subsection = section.split(".", 1)
            line = line[m.end() :].strip()
        if not line or line[0] in "#;":
            continue
        km = _KEY.match(line)
        if km is None or section is None:
            return [*found, "unparsable"]
        if dangerous_key(section, subsection, km.group(1)):
            found.append(f"{section}.{km.group(1)}")
        rest = line[km.end() :] if km.group(2) else line[km.end() :].strip()
        if not km.group(2) and rest and rest[0] not in "#;":
            return [*found, "unparsable"]
        ok, continues = _value_continues(rest)
        while ok and continues and i < len(lines):
            ok, continues = _value_continues(lines[i])
            i += 1
        if not ok:
            return [*found, "unparsable"]
    return found
