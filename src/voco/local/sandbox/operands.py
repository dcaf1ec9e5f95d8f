"""What a command's operands really are, decided on fds before an unapproved run.

Why: ``read_file`` refuses a hard-linked file (its other name may be outside
the roots: the content *is* the outside file), but ``cat``, ``head`` or
``grep -r`` would print it just the same. So before an allow-listed command
runs without asking, every file operand is opened beneath its root and
``fstat``-ed like ``read_file`` does; globs are expanded over a superset of
what bash would match; recursive readers (``grep -r``, ``rg``, ``diff -r``)
have their directories walked, bounded. Anything hard-linked, on another
filesystem (a mount inside a root), secret-looking (``.env*``, ``*.pem``,
``id_*``, credentials files), or too big to check turns into a *reason*: the
command then needs the user's yes. Scope violations are still the kernel's
(``check_within``), not ours.

For git, the repository config the command will read (found the way git
finds it, from the cwd and ``-C``/``--git-dir``/``--bare``) is scanned with
:mod:`voco.local.sandbox.gitconfig`.

Residual race: the roots are read-only inside the sandbox, so only another
process on the host could change a checked file before the run.
"""

from __future__ import annotations

import contextlib
import fnmatch
import os
import re
import stat
from collections.abc import Iterator
from dataclasses import dataclass, field

from voco.local.sandbox.commands import GitContext
from voco.local.sandbox.errors import ActionError
from voco.local.sandbox.gitconfig import dangerous_entries
from voco.local.sandbox.paths import Location, Resolver, fd_path
from voco.local.sandbox.risk import Assessment

WALK_ENTRIES_CAP = 20000
WALK_DEPTH_CAP = 40
GIT_CONFIG_CAP = 1 << 20
_GLOB = re.compile(r"[*?\[]")
_SECRET_NAMES = re.compile(
    r"""^(
        \.env(\..*)?|.*\.env|\.envrc|
        .*\.(pem|key|p12|pfx|jks|keystore|kdbx|asc|gpg|ppk)|
        id_[a-z0-9_]+(\.pub)?|
        credentials(\.[a-z]+)?|.*[-_]credentials(\.[a-z]+)?|
        \.netrc|\.pgpass|\.npmrc|\.pypirc|\.git-credentials|\.htpasswd|
        secrets?(\.[a-z]+)?|.*\.secrets?
    )$""",
    re.VERBOSE | re.IGNORECASE,
)


def secret_looking(name: str) -> bool:
    """Names that usually hold keys or passwords (a reason to ask, not to refuse)."""
    return bool(_SECRET_NAMES.match(name))


@dataclass
class _Check:
    resolver: Resolver
    follow: bool = False
    reasons: list[str] = field(default_factory=list)
    entries: int = 0

    def add(self, reason: str) -> None:
        if reason not in self.reasons:
            self.reasons.append(reason)

    def budget(self) -> bool:
        self.entries += 1
        if self.entries > WALK_ENTRIES_CAP:
            self.add(f"more than {WALK_ENTRIES_CAP} files to check before running")
            return False
        return True


def operand_reasons(resolver: Resolver, assessment: Assessment, cwd: Location) -> list[str]:
    """Reasons the assessed command's operands need the user's approval (empty: none)."""
    c = _Check(resolver, follow=assessment.follow)
    for p in assessment.paths:
        try:
            loc = resolver.locate(p, base=cwd)
        except ActionError:
            continue  # check_within has already refused what is out of scope
        for found, shown in _expand(c, loc, p):
            _inspect(c, found, shown, deep=p in assessment.deep, depth=0)
    for ctx in assessment.git:
        _git(c, ctx, cwd)
    return c.reasons


# ------------------------------------------------------------------ operands


def _open(c: _Check, loc: Location) -> int | None:
    try:
        return c.resolver.open(loc, os.O_PATH)
    except ActionError:
        return None  # missing, or the kernel refuses: check_within reports scope


def _inspect(c: _Check, loc: Location, shown: str, *, deep: bool, depth: int) -> None:
    name = loc.rel.rstrip("/").rsplit("/", 1)[-1]
    fd = _open(c, loc)
    if fd is None:
        return  # nothing there to read (or out of scope: check_within's call)
    try:
        st = os.fstat(fd)
        if st.st_dev != os.fstat(loc.root.fd).st_dev:
            c.add(f"{shown!r} is on another filesystem mounted inside the root")
            return
        if stat.S_ISDIR(st.st_mode):
            if deep:
                _walk(c, loc, fd, depth)
            return
        target = _kernel_name(fd)
        if secret_looking(name):
            c.add(f"reads {shown!r}, which looks like a secret")
        elif target != name and secret_looking(target):  # an innocent name linking to .env
            c.add(f"reads {shown!r}, which resolves to {target!r}: looks like a secret")
        if stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode):
            c.add(f"{shown!r} is a device file")
        if stat.S_ISREG(st.st_mode) and st.st_nlink > 1:
            c.add(f"{shown!r} is hard-linked: its other names may be outside the allowed roots")
    finally:
        os.close(fd)


def _kernel_name(fd: int) -> str:
    try:
        return os.path.basename(fd_path(fd))
    except OSError:
        return ""


def _walk(c: _Check, loc: Location, fd: int, depth: int) -> None:
    if depth >= WALK_DEPTH_CAP:
        c.add(f"{loc.rel or '.'!r} is nested too deeply to check before running")
        return
    for name, is_link in _list(fd):
        if not c.budget():
            return
        if is_link and not c.follow:
            continue  # grep -r and rg skip the symlinks they meet; -R / -L follow them
        child = loc.join(name)
        _inspect(c, child, c.resolver.display(child), deep=True, depth=depth + 1)


def _list(fd: int) -> list[tuple[str, bool]]:
    """Sorted (name, is a symlink) of a directory held as an O_PATH fd."""
    try:
        dfd = os.open(".", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC, dir_fd=fd)
    except OSError:
        return []
    try:
        with os.scandir(dfd) as it:
            return sorted((e.name, e.is_symlink()) for e in it)
    except OSError:
        return []
    finally:
        os.close(dfd)


def _expand(c: _Check, loc: Location, shown: str) -> Iterator[tuple[Location, str]]:
    """``loc`` itself, or — for a glob — every existing name it could match.

    A superset of bash's matches: a component with ``[`` matches everything
    (no character-class dialect to get wrong); dot-files match only a
    pattern that starts with a dot, as in bash without ``dotglob`` (which
    only ``shopt``, a risky command, could turn on).
    """
    parts = loc.rel.split("/")
    if not any(_GLOB.search(p) for p in parts):
        yield loc, shown
        return
    frontier = [Location(loc.root, "")]
    for i, part in enumerate(parts):
        if not _GLOB.search(part):
            frontier = [f.join(part) if part else f for f in frontier]
            continue
        nxt: list[Location] = []
        for base in frontier:
            fd = _open(c, base)
            if fd is None:
                continue
            try:
                for name, _ in _list(fd):
                    if not c.budget():
                        return
                    if _matches(part, name):
                        nxt.append(base.join(name))
            finally:
                os.close(fd)
        frontier = nxt
        if i == len(parts) - 1:
            break
    for f in frontier:
        yield f, c.resolver.display(f)


def _matches(pattern: str, name: str) -> bool:
    if name.startswith(".") and not pattern.startswith("."):
        return False
    if "[" in pattern:
        return True
    return fnmatch.fnmatchcase(name, pattern.replace("\\", ""))


# ------------------------------------------------------------------ git


def _read(c: _Check, loc: Location) -> str | None:
    try:
        fd = c.resolver.open(loc, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY)
    except ActionError:
        return None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            return None
        return os.pread(fd, GIT_CONFIG_CAP, 0).decode("utf-8", "replace")
    except OSError:
        return None
    finally:
        os.close(fd)


def _is_dir(c: _Check, loc: Location) -> bool:
    fd = _open(c, loc)
    if fd is None:
        return False
    try:
        return stat.S_ISDIR(os.fstat(fd).st_mode)
    finally:
        os.close(fd)


def _git_dirs(c: _Check, start: Location) -> list[Location]:
    """Every directory git could take as its repository from ``start``, upwards."""
    found: list[Location] = []
    parts = [p for p in start.rel.split("/") if p not in ("", ".")]
    # '..' components make ancestry ambiguous; check_within has bounded them.
    while True:
        here = Location(start.root, "/".join(parts))
        dotgit = here.join(".git")
        if _is_dir(c, dotgit):
            found.append(dotgit)
        else:
            text = _read(c, dotgit)
            if text is not None and text.startswith("gitdir:"):
                target = text[len("gitdir:") :].strip()
                with contextlib.suppress(ActionError):
                    found.append(c.resolver.locate(target, base=here))
        if _read(c, here.join("HEAD")) is not None:
            found.append(here)  # a bare repository, or the inside of .git
        if not parts:
            return found
        parts.pop()


def _git(c: _Check, ctx: GitContext, cwd: Location) -> None:
    try:
        start = cwd
        for d in ctx.chdirs:
            start = c.resolver.locate(d, base=start)
        if ctx.git_dir is not None:
            dirs = [c.resolver.locate(ctx.git_dir, base=start)]
        elif ctx.bare:
            dirs = [start]
        else:
            dirs = _git_dirs(c, start)
    except ActionError:
        return
    for gd in list(dirs):
        common = _read(c, gd.join("commondir"))
        if common is not None and common.strip():
            with contextlib.suppress(ActionError):
                dirs.append(c.resolver.locate(common.strip(), base=gd))
    for gd in dirs:
        for name in ("config", "config.worktree"):
            text = _read(c, gd.join(name))
            if text is None:
                continue
            bad = dangerous_entries(text)
            if bad:
                shown = c.resolver.display(gd.join(name))
                keys = ", ".join(bad[:5]) + (" …" if len(bad) > 5 else "")
                c.add(f"git repository config {shown!r} sets programs git may run ({keys})")
