"""Command risk classification — pure, sans-I/O, default-deny.

A shell line is parsed with tree-sitter-bash and every node is visited. Only a
small grammar is "plain": simple commands whose words are static strings,
joined by pipes, ``&&``, ``||``, ``;`` and newlines, with redirections that
only read, duplicate fds or write to ``/dev/null``. Anything else — command or
process substitution, variable or arithmetic expansion, env-var prefixes,
subshells, control flow, functions, brace/tilde expansion, ANSI-C strings,
writing redirections, parse errors — makes the line risky, and so does any
command that is not a read-only allow-listed one (see :mod:`commands`).

tree-sitter is not bash, so where the two could disagree we refuse to be
clever: a line containing substitution syntax that the parser did not report
as such, or a backslash-newline continuation, is risky too. The OS sandbox
(read-only roots, no network) remains underneath whatever this module decides.

``argv`` lists are never parsed: each element is a literal word.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import tree_sitter_bash
from tree_sitter import Language, Node, Parser

from voco.local.sandbox.commands import DEV_NULL, Findings, GitContext, Globbed, classify_words


@dataclass(frozen=True)
class Assessment:
    """The verdict on one command.

    ``paths`` are file operands of allow-listed commands and redirect targets;
    ``maybe_paths`` are arguments of other commands that look like paths
    (absolute, or with ``..``). The caller checks both against the roots.
    ``deep`` and ``git`` are for the fd checks of :mod:`operands`.
    """

    risky: bool
    reasons: tuple[str, ...]
    paths: tuple[str, ...]
    maybe_paths: tuple[str, ...]
    globbed: bool = False
    deep: tuple[str, ...] = ()
    follow: bool = False
    git: tuple[GitContext, ...] = ()

    @property
    def reason(self) -> str:
        return "; ".join(self.reasons)


@lru_cache(maxsize=1)
def _language() -> Language:
    return Language(tree_sitter_bash.language())


_local = threading.local()


def _parser() -> Parser:
    """One parser per thread: a tree-sitter ``Parser`` holds mutable parse state."""
    parser: Parser | None = getattr(_local, "parser", None)
    if parser is None:
        parser = Parser(_language())
        _local.parser = parser
    return parser


# Structural nodes that are fine in themselves; their children are visited.
_STRUCTURAL = frozenset({"program", "pipeline", "list", "comment"})
_WORDS = frozenset(
    {
        "word",
        "string",
        "raw_string",
        "string_content",
        "number",
        "concatenation",
        "command_name",
        "file_descriptor",
        "heredoc_start",
        "heredoc_end",
        "heredoc_content",
    }
)
_REDIRECTS = frozenset({"file_redirect", "heredoc_redirect", "herestring_redirect"})
_RISKY_NODES = {
    "command_substitution": "uses command substitution $(…)",
    "process_substitution": "uses process substitution <(…)/>(…)",
    "simple_expansion": "expands a variable ($VAR) whose value can't be checked",
    "expansion": "expands a variable (${…}) whose value can't be checked",
    "arithmetic_expansion": "uses arithmetic expansion $((…))",
    "brace_expression": "uses brace expansion {…}",
    "ansi_c_string": "uses ANSI-C quoting $'…'",
    "translated_string": 'uses locale translation $"…"',
    "variable_assignment": "sets a shell variable",
    "subshell": "runs a subshell ( … )",
    "compound_statement": "runs a command group { … }",
    "function_definition": "defines a shell function",
    "if_statement": "uses shell control flow (if)",
    "for_statement": "uses shell control flow (for)",
    "c_style_for_statement": "uses shell control flow (for)",
    "while_statement": "uses shell control flow (while/until)",
    "case_statement": "uses shell control flow (case)",
    "negated_command": "negates a command (!)",
    "test_command": "uses a shell test [[ … ]]",
    "declaration_command": "declares or exports shell variables",
    "unset_command": "unsets shell variables",
    "ERROR": "could not be parsed unambiguously",
}
_WRITE_OPS = frozenset({">", ">>", "&>", "&>>", ">|", "<>"})
_DUP_OPS = frozenset({">&", "<&", ">&-", "<&-"})
_GLOB = re.compile(r"(?<!\\)[*?\[]")
_BRACE = re.compile(r"\{[^{}]*(,|\.\.)[^{}]*\}")
_DQ_ESCAPE = re.compile(r'\\([$`"\\\n])')
_BS_ESCAPE = re.compile(r"\\(.)", re.DOTALL)


class _Walker:
    def __init__(self) -> None:
        self.f = Findings()
        self.substitution_seen = False
        self.globbed = False
        self.risky_depth = 0

    # -------------------------------------------------------------- statements

    def visit(self, node: Node) -> None:
        t = node.type
        if node.is_missing:
            self.f.risk(_RISKY_NODES["ERROR"])
            return
        if not node.is_named:
            if t == "&":
                self.f.risk("runs a command in the background (&)")
            return
        if t in _STRUCTURAL:
            self._children(node)
        elif t == "command":
            self.command(node)
        elif t == "redirected_statement":
            self._children(node)
        elif t in _REDIRECTS:
            self.redirect(node)
        elif t in _WORDS:
            self._children(node)
        else:
            if t in ("command_substitution", "process_substitution"):
                self.substitution_seen = True
            # Inside an already-risky construct, its plumbing (variable names,
            # operators) adds nothing; named risks and nested commands still do.
            if t in _RISKY_NODES or not self.risky_depth:
                self.f.risk(_RISKY_NODES.get(t, f"uses unsupported shell syntax ({t})"))
            self.risky_depth += 1
            try:
                self._children(node)
            finally:
                self.risky_depth -= 1

    def _children(self, node: Node) -> None:
        for child in node.children:
            self.visit(child)

    def command(self, node: Node) -> None:
        words: list[str | None] = []
        for i, child in enumerate(node.children):
            field = node.field_name_for_child(i)
            if child.type == "variable_assignment":
                name = child.child_by_field_name("name")
                shown = _text(name) if name is not None else "?"
                self.f.risk(f"sets environment variable {shown}=… for the command")
                value = child.child_by_field_name("value")
                if value is not None:
                    self.word(value)
            elif child.type in _REDIRECTS:
                self.redirect(child)
            elif field in ("name", "argument"):
                target = child.children[0] if child.type == "command_name" else child
                word = self.word(target)
                if word is not None and _glob_leading(target):
                    word = Globbed(word)
                words.append(word)
            else:
                self.visit(child)
        classify_words(words, self.f)

    def redirect(self, node: Node) -> None:
        if node.type == "file_redirect":
            self.file_redirect(node)
            return
        for child in node.children:
            if child.type == "heredoc_body":
                self._children(child)  # expansions inside an unquoted heredoc
            elif child.is_named and child.type not in ("heredoc_start", "heredoc_end"):
                if child.type in _WORDS or child.type in _RISKY_NODES:
                    self.word(child)
                else:
                    self.visit(child)

    def file_redirect(self, node: Node) -> None:
        op = next((c.type for c in node.children if not c.is_named), "")
        dest_node = node.child_by_field_name("destination")
        for child in node.children:
            if child.type == "ERROR":
                self.f.risk(_RISKY_NODES["ERROR"])
        if dest_node is None:
            if op not in ("<&-", ">&-"):
                self.f.risk(f"uses an unsupported redirection ({op})")
            return
        dest = self.word(dest_node)
        if op in _DUP_OPS and (dest_node.type == "number" or dest == "-"):
            return
        if dest is None:
            self.f.risk(f"redirects ({op}) to a target computed at run time")
            return
        if op == "<":
            self.f.path(dest)
            return
        if op in _WRITE_OPS or op in _DUP_OPS:
            if dest == DEV_NULL:
                return
            self.f.path(dest)
            self.f.risk(f"writes to {dest!r} (redirection {op})")
            return
        self.f.risk(f"uses an unsupported redirection ({op})")

    # -------------------------------------------------------------- words

    def word(self, node: Node) -> str | None:
        """The static value of a word after quote removal, or None if it isn't static."""
        t = node.type
        raw = _text(node)
        if t == "word":
            if raw.startswith("~"):
                self.f.risk(f"uses tilde expansion ({raw})")
                return None
            if _BRACE.search(raw):
                self.f.risk(f"uses brace expansion ({raw})")
                return None
            if _GLOB.search(raw):
                self.globbed = True
            return _BS_ESCAPE.sub(r"\1", raw)
        if t == "number":
            return raw
        if t == "raw_string":
            return raw[1:-1]
        if t == "string":
            parts: list[str] = []
            static = True
            for child in node.children:
                if child.type == "string_content":
                    parts.append(_DQ_ESCAPE.sub(r"\1", _text(child)))
                elif child.is_named:
                    static = False
                    self.visit(child)
            return "".join(parts) if static else None
        if t == "concatenation":
            if _BRACE.search(raw):
                self.f.risk(f"uses brace expansion ({raw})")
            values = [self.word(c) for c in node.children]
            if any(v is None for v in values):
                return None
            return "".join(v for v in values if v is not None)
        self.visit(node)
        if t not in _RISKY_NODES:
            self.f.risk(f"uses unsupported shell syntax ({t})")
        return None


def _glob_leading(node: Node) -> bool:
    """Could this word's glob expansion be read as an option?

    True when it has an unquoted ``*``, ``?`` or ``[`` and its first
    character is one of them (the expansion starts with a file name's first
    character, possibly '-') or is '-' itself (``-*``, ``--p*`` expand to
    whatever options the directory's file names spell).
    """
    parts = node.children if node.type == "concatenation" else [node]
    if not any(p.type == "word" and _GLOB.search(_text(p)) for p in parts):
        return False
    for part in parts:
        raw = _text(part)
        if part.type in ("string", "raw_string"):
            inner = raw[1:-1]
            if not inner:
                continue  # ""* is still *
            return inner.startswith("-")
        return part.type == "word" and raw[:1] in ("*", "?", "[", "-")
    return False


def _text(node: Node | None) -> str:
    if node is None or node.text is None:
        return ""
    return node.text.decode("utf-8", "surrogateescape")


def _finish(f: Findings, globbed: bool = False) -> Assessment:
    if globbed:
        for p in f.paths:
            if any(c.startswith(".") and _GLOB.search(c) for c in p.split("/")):
                f.risk(f"glob {p!r} could match '..'")
    return Assessment(
        risky=bool(f.reasons),
        reasons=tuple(f.reasons),
        paths=tuple(f.paths),
        maybe_paths=tuple(f.maybe_paths),
        globbed=globbed,
        deep=tuple(f.deep),
        follow=f.follow,
        git=tuple(f.git),
    )


def classify_command(command: str) -> Assessment:
    """Classify a shell command line (run with ``bash -c``)."""
    tree: Any = _parser().parse(command.encode("utf-8", "surrogateescape"))
    w = _Walker()
    root: Node = tree.root_node
    if root.has_error:
        w.f.risk(_RISKY_NODES["ERROR"])
    w.visit(root)
    if not w.substitution_seen and any(s in command for s in ("`", "$(", "<(", ">(")):
        w.f.risk("contains substitution syntax the parser did not recognise")
    if "\\\n" in command or "\\\r" in command:
        w.f.risk("uses a backslash-newline continuation")
    if not command.strip():
        w.f.risk("empty command")
    return _finish(w.f, w.globbed)


def classify_argv(argv: Sequence[str]) -> Assessment:
    """Classify an argv list: elements are literal words, no shell involved."""
    f = Findings()
    if not argv:
        f.risk("empty command")
    classify_words(list(argv), f)
    return _finish(f)
