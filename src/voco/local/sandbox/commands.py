"""Per-command policy: the read-only allow-list and why everything else is risky.

Pure and sans-I/O. A command is *safe* (runs without asking) only if its name
is on the allow-list and none of its options is on that command's deny-list;
everything else needs the user's approval, with a reason naming exactly what
made it risky. The deny-lists are the options that turn a read-only tool into
one that writes files or runs programs (``find -exec``, ``sort -o``, ``rg
--pre``, ``git -c`` …). GNU tools and git accept unambiguous abbreviations of
long options (``sort --o=f``), so a long option denies if it is *any* prefix
of a denied one; an abbreviated option that takes a value, given without
``=``, is risky (which word the tool then consumes depends on its full option
table, which we don't have). Options with optional arguments take them only
attached, so the next word is read as an ordinary argument.

Globs expand to file names *after* we looked, and a file may be called
``--pre=sh``. We neither expand globs here (bash's rules — dotglob,
character classes, nullglob — would have to be matched exactly, and the
directory can change before the run) nor rewrite the command (the user
approves what the engine sent, byte for byte). Instead, a word whose
expansion could *start with ``-``* (its first character is a glob
character: ``*``, ``*.py``, ``[ab]*`` — not ``./*`` or ``src/*``) is risky
before ``--`` for every command that has a dangerous option (deny-list, an
option naming a file, or an operand count that turns into a write); the
reason tells the engine to write ``./*`` or ``-- *``. ``find`` reads its
expression after ``--`` too, so any such word is risky there.

Operands that name files are collected for the caller to check against the
roots with the kernel (see ``paths.Resolver.check_within``). For commands that
are not allow-listed we cannot know which arguments are paths, so we collect
"maybe" paths — absolute arguments and arguments containing ``..`` — which the
caller checks too, so that ``rm -rf /`` is a scope violation, not a question.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from voco.local.sandbox.option_tables import (
    ALLOW,
    FIND_DENY,
    FIND_PATH,
    FIND_VALUE,
    GIT,
    GIT_GLOBAL_DENY,
    GIT_GLOBAL_FLAGS,
    GIT_GLOBAL_PATH,
    GIT_GLOBAL_VALUE,
    Spec,
    fs,
    why,
)

DEV_NULL = "/dev/null"


class Globbed(str):
    """A word whose glob expansion could start with ``-`` (set by the parser)."""

    __slots__ = ()


def _glob_reason(prog: str, word: str) -> str:
    return (
        f"glob {word!r} could expand to a file name starting with '-' that `{prog}` "
        "would read as an option (write './' before it, or put '--' before the operands)"
    )


def _dangerous(spec: Spec) -> bool:
    return bool(spec.deny or spec.path_opts) or spec.max_operands is not None


@dataclass(frozen=True)
class GitContext:
    """Where one allow-listed git command will look for its repository."""

    chdirs: tuple[str, ...] = ()
    git_dir: str | None = None
    bare: bool = False


@dataclass
class Findings:
    """What classification found; accumulated across every command in a line.

    ``deep``: operands a recursive reader (``grep -r``, ``rg``, ``diff -r``)
    will descend into; ``git``: repositories allow-listed git will read the
    config of. Both are checked on fds by :mod:`voco.local.sandbox.operands`.
    """

    reasons: list[str] = field(default_factory=list)
    paths: list[str] = field(default_factory=list)
    maybe_paths: list[str] = field(default_factory=list)
    deep: list[str] = field(default_factory=list)
    follow: bool = False  # a recursive reader follows symlinks (grep -R, rg -L)
    git: list[GitContext] = field(default_factory=list)

    def risk(self, reason: str) -> None:
        if reason not in self.reasons:
            self.reasons.append(reason)

    def path(self, value: str) -> None:
        if value not in ("-", DEV_NULL) and value not in self.paths:
            self.paths.append(value)

    def maybe(self, value: str) -> None:
        if value != DEV_NULL and value not in self.maybe_paths:
            self.maybe_paths.append(value)


def _long_match(given: str, options: frozenset[str] | Mapping[str, str]) -> str | None:
    """Exact match, or an abbreviation: GNU getopt and git accept any unique
    prefix (``--o`` for ``--output``). A prefix of several is returned too —
    the tool would refuse it, and denying it is the safe side."""
    if given in options:
        return given
    if len(given) > 2 and given.startswith("--"):
        hits = sorted(o for o in options if o.startswith(given))
        if hits:
            return hits[0]
    return None


def _parse(
    spec: Spec, args: Sequence[str | None], f: Findings, prog: str
) -> tuple[list[str], bool]:
    """Walk options and operands; returns (operands, pattern-given-by-option)."""
    operands: list[str] = []
    pattern_given = False
    globs = _dangerous(spec)
    i = 0
    while i < len(args):
        arg = args[i]
        i += 1
        if arg is None:
            continue
        if globs and isinstance(arg, Globbed):
            f.risk(_glob_reason(prog, arg))
        if arg == "--":
            operands.extend(a for a in args[i:] if a is not None)
            break
        if arg.startswith("--"):
            name, eq, val = arg.partition("=")
            denied = None if name in spec.exact else _long_match(name, spec.deny)
            if denied is not None:
                f.risk(spec.deny[denied])
            opt = _long_match(name, spec.value)
            if opt is None:
                continue
            if not eq:
                if opt in spec.attached:
                    continue  # optional argument: the next word is not its value
                if opt != name:
                    f.risk(f"`{prog} {name}` abbreviates an option that takes a value")
                    continue
                val_arg = args[i] if i < len(args) else None
                i += 1
                if val_arg is None:
                    continue
                if globs and isinstance(val_arg, Globbed):
                    f.risk(_glob_reason(prog, val_arg))
                val = val_arg
            if opt in spec.path_opts:
                f.path(val)
            if opt in spec.pattern_opts:
                pattern_given = True
            continue
        if _is_number(arg):
            continue
        if arg.startswith("-") and len(arg) > 1:
            cluster = arg[1:]
            for j, ch in enumerate(cluster):
                opt = "-" + ch
                if opt in spec.deny:
                    f.risk(spec.deny[opt])
                if opt in spec.value:
                    val2 = cluster[j + 1 :]
                    if not val2 and opt not in spec.attached:
                        nxt = args[i] if i < len(args) else None
                        i += 1
                        if globs and isinstance(nxt, Globbed):
                            f.risk(_glob_reason(prog, nxt))
                        val2 = nxt or ""
                    if opt in spec.path_opts and val2:
                        f.path(val2)
                    if opt in spec.pattern_opts:
                        pattern_given = True
                    break
            continue
        operands.append(arg)
    return operands, pattern_given


def _is_number(arg: str) -> bool:
    return len(arg) > 1 and arg[0] == "-" and arg[1:].isdigit()  # ``head -5``


def _operands(
    spec: Spec, operands: list[str], pattern_given: bool, f: Findings, prog: str
) -> list[str]:
    """Record the file operands; returns them."""
    kind = spec.operands
    if kind == "none":
        return []
    if kind == "pattern" and not pattern_given:
        operands = operands[1:]
    elif kind == "date":
        for op in operands:
            if not op.startswith("+"):
                f.risk("`date MMDDhhmm` sets the system clock")
        return []
    if spec.max_operands is not None and any(isinstance(op, Globbed) for op in operands):
        f.risk(_glob_reason(prog, next(op for op in operands if isinstance(op, Globbed))))
    if spec.max_operands is not None and len(operands) > spec.max_operands:
        f.risk(spec.extra_reason)
        operands = operands[: spec.max_operands]
    for op in operands:
        f.path(op)
    return operands


def _find(args: Sequence[str | None], f: Findings) -> None:
    for a in args:
        if isinstance(a, Globbed):  # find reads predicates even after '--'
            f.risk(_glob_reason("find", a) + "; quote find's patterns")
    i = 0
    # leading options -H -L -P -D x -Olevel, then starting points, then the expression
    while i < len(args):
        a = args[i]
        if a in ("-H", "-L", "-P"):
            i += 1
        elif a == "-D":
            i += 2
        elif a is not None and a.startswith("-O"):
            i += 1
        else:
            break
    while i < len(args):
        a = args[i]
        if a is not None and (a.startswith("-") or a in ("(", ")", "!", ",")):
            break
        if a is not None:
            f.path(a)
        i += 1
    while i < len(args):
        a = args[i]
        i += 1
        if a is None:
            continue
        if a in FIND_DENY:
            f.risk(FIND_DENY[a])
            if a in ("-fprint", "-fprint0", "-fls", "-fprintf") and i < len(args):
                target = args[i]
                i += 1
                if target is not None:
                    f.path(target)
        elif a.startswith("-newer") and len(a) == 8:  # -newerXY REF
            ref = args[i] if i < len(args) else None
            i += 1
            if ref is not None and a[-1] not in ("t",):
                f.path(ref)
        elif a in FIND_VALUE:
            val = args[i] if i < len(args) else None
            i += 1
            if a in FIND_PATH and val is not None:
                f.path(val)


def _git(args: Sequence[str | None], f: Findings) -> None:
    i = 0
    chdirs: list[str] = []
    git_dir: str | None = None
    bare = False
    while i < len(args):
        a = args[i]
        if a is None:
            f.risk("git subcommand or option is computed at run time")
            return
        if not a.startswith("-"):
            break
        i += 1
        name, eq, val = a.partition("=")
        denied = _long_match(name, GIT_GLOBAL_DENY) if name.startswith("--") else None
        if name in GIT_GLOBAL_DENY or denied is not None:
            f.risk(GIT_GLOBAL_DENY[denied or name])
            if name in ("-c", "--config-env") and not eq:
                i += 1  # skip the key=value it consumes
            continue
        if name in GIT_GLOBAL_VALUE:
            if not eq:
                val = (args[i] or "") if i < len(args) else ""
                i += 1
            if name in GIT_GLOBAL_PATH and val:
                f.path(val)
            if name == "-C" and val:
                chdirs.append(val)
            elif name == "--git-dir":
                git_dir = val
            continue
        bare = bare or name == "--bare"
        if name not in GIT_GLOBAL_FLAGS:
            f.risk(f"`git {name}` is not an allow-listed git option")
    if i >= len(args):
        return
    sub = args[i]
    rest = args[i + 1 :]
    for a in args[: i + 1]:
        if isinstance(a, Globbed):
            f.risk(_glob_reason("git", a))
    f.git.append(GitContext(tuple(chdirs), git_dir, bare))
    spec = GIT.get(sub or "")
    if spec is None:
        f.risk(why("git", [sub, *rest]))
        _maybe_paths(rest, f)
        return
    operands, _ = _parse(spec, rest, f, f"git {sub}")
    if sub == "branch":
        # Operands are patterns in list mode; otherwise they name a branch to create.
        if operands and not any(_lists_branches(a) for a in rest if a is not None):
            f.risk("`git branch NAME` creates a branch")
        return
    _operands(spec, operands, False, f, f"git {sub}")


def _lists_branches(arg: str) -> bool:
    if arg.startswith("--"):
        return _long_match(arg, fs("--list")) is not None
    return arg.startswith("-") and "l" in arg[1:]


def _maybe_paths(args: Sequence[str | None], f: Findings) -> None:
    """For commands we don't understand: anything that looks like it names a file."""
    for a in args:
        if a is None:
            continue
        value = a.partition("=")[2] if a.startswith("-") and "=" in a else a
        if value.startswith("/") or ".." in value.split("/"):
            f.maybe(value)


_CUSTOM: dict[str, Callable[[Sequence[str | None], Findings], None]] = {
    "find": _find,
    "git": _git,
}


def classify_words(words: Sequence[str | None], f: Findings) -> None:
    """Classify one simple command given as words (``None`` = computed at run time)."""
    if not words:
        return
    name, args = words[0], words[1:]
    if name is None:
        f.risk("the command name is computed at run time")
        _maybe_paths(args, f)
        return
    if "/" in name:
        f.risk(f"runs a program by path ({name})")
        _maybe_paths(args, f)
        return
    custom = _CUSTOM.get(name)
    if custom is not None:
        custom(args, f)
        return
    spec = ALLOW.get(name)
    if spec is None:
        f.risk(why(name, args))
        _maybe_paths(args, f)
        return
    operands, pattern_given = _parse(spec, args, f, name)
    paths = _operands(spec, operands, pattern_given, f, name)
    if name == "rg" or (name in ("grep", "diff") and any(_recursive(a) for a in args)):
        for p in paths or ["."]:
            if p not in f.deep:
                f.deep.append(p)
                f.path(p)
        f.follow = f.follow or any(_follows(name, a) for a in args)


def _follows(name: str, arg: str | None) -> bool:
    """Does a recursive reader follow symlinks it meets (over-approximate)?"""
    if arg is None or not arg.startswith("-"):
        return False
    if arg.startswith("--"):
        return arg.startswith(("--f", "--dereference-r")) if name == "rg" else "deref" in arg
    return ("L" if name == "rg" else "R") in arg[1:]


def _recursive(arg: str | None) -> bool:
    """``grep -r/-R/--recursive/-d recurse``, ``diff -r/--recursive`` (over-approximate)."""
    if arg is None or not arg.startswith("-"):
        return False
    if arg.startswith("--"):
        return arg.startswith(("--rec", "--dereference-r", "--directories=r", "--d=r"))
    return "r" in arg[1:] or "R" in arg[1:] or arg == "-drecurse"
