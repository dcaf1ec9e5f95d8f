"""Kernel-side path resolution beneath the allowed roots.

Why the kernel: any user-space check (``realpath`` then ``open``) is a
time-of-check/time-of-use race — a symlink swapped between the two calls
sends the open outside the root. ``openat2(root_fd, path, RESOLVE_BENEATH |
RESOLVE_NO_MAGICLINKS)`` makes the *same* system call that opens the file
refuse any step (``..``, absolute symlink, ``/proc`` magic link) that would
leave ``root_fd``. Callers then decide on the opened fd (``fstat``), never on
the name, so nothing is resolved twice.

Where ``openat2`` is unavailable (kernel < 5.6, or a seccomp filter that
answers ``ENOSYS``/``EPERM``) we walk the path one component at a time with
``O_NOFOLLOW``, keeping a stack of directory fds. A symlink is read and its
target spliced into the remaining components, so it is followed only while it
stays beneath the root; ``..`` pops the stack and may never pop the root.

Paths are taken literally: no URL-decoding, no ``~``/``$VAR`` expansion, no
Unicode normalisation — a homoglyph is a different name, nothing more.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import os
import stat
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from voco.local.sandbox.errors import (
    INTERNAL,
    NOT_FOUND,
    SCOPE_VIOLATION,
    ActionError,
    invalid,
    scope,
)

# linux/openat2.h
RESOLVE_NO_XDEV = 0x01
RESOLVE_NO_MAGICLINKS = 0x02
RESOLVE_NO_SYMLINKS = 0x04
RESOLVE_BENEATH = 0x08
SYS_OPENAT2 = 437  # same number on every Linux architecture (unified table since 5.6)

# NO_XDEV: a mount inside a root (a proc or bind mount) is another tree the
# user never allowed; crossing into it is a scope violation like '..'.
_RESOLVE = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS | RESOLVE_NO_XDEV
_MAX_SYMLINKS = 40  # the kernel's own limit, so both resolvers agree on ELOOP
_EAGAIN_RETRIES = 8
_MAX_PATH_BYTES = 4096


class _OpenHow(ctypes.Structure):
    _fields_ = (
        ("flags", ctypes.c_uint64),
        ("mode", ctypes.c_uint64),
        ("resolve", ctypes.c_uint64),
    )


_libc = ctypes.CDLL(None, use_errno=True)
_syscall = _libc.syscall
_syscall.restype = ctypes.c_long


def openat2(dirfd: int, path: bytes, flags: int, mode: int = 0, resolve: int = _RESOLVE) -> int:
    """Raw ``openat2(2)``; raises ``OSError`` with the kernel's errno."""
    how = _OpenHow(flags, mode, resolve)
    fd = _syscall(
        ctypes.c_long(SYS_OPENAT2),
        ctypes.c_int(dirfd),
        ctypes.c_char_p(path),
        ctypes.byref(how),
        ctypes.c_size_t(ctypes.sizeof(how)),
    )
    if fd < 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err), path.decode("utf-8", "replace"))
    return int(fd)


@dataclass(frozen=True)
class Root:
    """An allowed root, pinned by an ``O_PATH`` fd opened once at start-up.

    ``given`` is the absolute path as configured (not resolved), ``real`` its
    realpath; absolute request paths may use either spelling.
    """

    given: str
    real: str
    fd: int

    def prefixes(self) -> tuple[str, ...]:
        return (self.real,) if self.real == self.given else (self.real, self.given)


@dataclass(frozen=True)
class Location:
    """A path relative to one root, exactly as the request spelled it (``""`` is the root)."""

    root: Root
    rel: str

    def join(self, name: str) -> Location:
        return Location(self.root, f"{self.rel}/{name}" if self.rel else name)


def _components(rel: str) -> list[str]:
    """Split without normalising: only empty and ``.`` components are no-ops."""
    return [c for c in rel.split("/") if c not in ("", ".")]


def lexically_beneath(rel: str) -> bool:
    """True if ``..`` never climbs above the start when read left to right."""
    depth = 0
    for comp in _components(rel):
        depth = depth - 1 if comp == ".." else depth + 1
        if depth < 0:
            return False
    return True


def map_oserror(exc: OSError, shown: str) -> ActionError:
    """Translate a kernel refusal into the protocol's vocabulary."""
    e = exc.errno
    if e in (errno.EXDEV, errno.ELOOP):
        return scope(f"{shown!r} resolves outside the allowed roots")
    if e in (errno.ENOENT, errno.ENOTDIR):
        return ActionError(NOT_FOUND, f"{shown!r} does not exist")
    if e == errno.ENAMETOOLONG:
        return invalid(f"{shown!r}: name too long")
    if e in (errno.EACCES, errno.EPERM):
        return invalid(f"{shown!r}: permission denied")
    if e == errno.EISDIR:
        return invalid(f"{shown!r} is a directory")
    if e in (errno.ENXIO, errno.ENODEV, errno.ETXTBSY):
        return invalid(f"{shown!r} is not a regular file")
    return ActionError(INTERNAL, f"{shown!r}: {os.strerror(e or 0)}")


class Resolver:
    """Opens request paths beneath the roots. Thread-safe: all state is read-only fds."""

    def __init__(self, roots: Sequence[Path], *, force_fallback: bool = False) -> None:
        if not roots:
            raise ValueError("at least one root is required")
        opened: list[Root] = []
        try:
            for r in roots:
                given = os.path.abspath(os.fspath(r))
                real = os.path.realpath(given)
                if real == "/":
                    raise ValueError("refusing '/' as a root: it would put everything in scope")
                fd = os.open(real, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
                opened.append(Root(given=given, real=real, fd=fd))
        except BaseException:
            for root in opened:
                os.close(root.fd)
            raise
        self.roots: tuple[Root, ...] = tuple(opened)
        self.uses_openat2 = not force_fallback and self._probe_openat2()

    def _probe_openat2(self) -> bool:
        try:
            fd = openat2(self.roots[0].fd, b".", os.O_PATH | os.O_CLOEXEC)
        except OSError as exc:
            if exc.errno in (errno.ENOSYS, errno.EPERM, errno.E2BIG, errno.EINVAL):
                return False
            raise
        os.close(fd)
        return True

    def close(self) -> None:
        for root in self.roots:
            with contextlib.suppress(OSError):
                os.close(root.fd)

    # ------------------------------------------------------------ naming

    def locate(self, path: str, *, base: Location | None = None) -> Location:
        """Map a request path onto (root, relative remainder) — purely by string.

        Absolute paths must start with a root's real or configured path
        followed by ``/`` (so ``/p/proj-evil`` never matches ``/p/proj``);
        relative ones are taken from ``base`` or the first root. Nothing is
        resolved here: the remainder still goes through the kernel.
        """
        if "\x00" in path:
            raise scope("path contains a NUL byte")
        if len(path.encode("utf-8", "surrogateescape")) > _MAX_PATH_BYTES:
            raise invalid("path too long")
        if path.startswith("/"):
            best: tuple[int, Root, str] | None = None
            for root in self.roots:
                for prefix in root.prefixes():
                    inside = path == prefix or path.startswith(prefix + "/")
                    if inside and (best is None or len(prefix) > best[0]):
                        best = (len(prefix), root, path[len(prefix) :].lstrip("/"))
            if best is None:
                raise scope(f"{path!r} is outside the allowed roots")
            return Location(best[1], best[2])
        if base is not None:
            return base.join(path) if path else base
        return Location(self.roots[0], path)

    def display(self, loc: Location) -> str:
        """How to name ``loc`` in a result so that it can be sent back as a path."""
        rel = "/".join(_components(loc.rel))
        if loc.root is self.roots[0]:
            return rel or "."
        return f"{loc.root.given}/{rel}" if rel else loc.root.given

    # ------------------------------------------------------------ opening

    def open(self, loc: Location, flags: int, mode: int = 0) -> int:
        """Open ``loc`` beneath its root; raises :class:`ActionError` on any refusal."""
        flags |= os.O_CLOEXEC
        shown = loc.rel or "."
        try:
            if self.uses_openat2:
                return self._open_openat2(loc, flags, mode)
            return self._open_walk(loc, flags, mode)
        except OSError as exc:
            raise map_oserror(exc, shown) from None

    def open_path(
        self, path: str, flags: int, mode: int = 0, *, base: Location | None = None
    ) -> tuple[int, Location]:
        loc = self.locate(path, base=base)
        return self.open(loc, flags, mode), loc

    def _open_openat2(self, loc: Location, flags: int, mode: int) -> int:
        raw = os.fsencode(loc.rel or ".")
        for _ in range(_EAGAIN_RETRIES):
            try:
                return openat2(loc.root.fd, raw, flags, mode)
            except OSError as exc:
                # EAGAIN: the kernel saw a concurrent rename and could not prove
                # a ``..`` stayed beneath; retrying is the documented answer.
                if exc.errno != errno.EAGAIN:
                    raise
        raise OSError(errno.EXDEV, "could not resolve beneath root (persistent races)")

    def _open_walk(self, loc: Location, flags: int, mode: int) -> int:
        """Component-by-component ``O_NOFOLLOW`` walk; the ``openat2`` fallback."""
        parts: deque[str] = deque(_components(loc.rel))
        stack: list[int] = [os.dup(loc.root.fd)]
        dev = os.fstat(loc.root.fd).st_dev
        links = 0
        try:
            while parts:
                comp = parts.popleft()
                if comp == "..":
                    if len(stack) == 1:
                        raise OSError(errno.EXDEV, "'..' above root")
                    os.close(stack.pop())
                    continue
                parent = stack[-1]
                if parts:
                    fd = os.open(comp, os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=parent)
                    st = os.fstat(fd)
                    if st.st_dev != dev:  # RESOLVE_NO_XDEV's rule
                        os.close(fd)
                        raise OSError(errno.EXDEV, "crosses a mount point")
                    if stat.S_ISDIR(st.st_mode):
                        stack.append(fd)
                        continue
                    if stat.S_ISLNK(st.st_mode):
                        target = os.readlink("", dir_fd=fd)
                        os.close(fd)
                        links = self._splice(parts, target, links)
                        continue
                    os.close(fd)
                    raise OSError(errno.ENOTDIR, "not a directory")
                # Final component: open it for real, never following a symlink
                # implicitly; a symlink is spliced in and resolved like any other.
                follow = not flags & os.O_NOFOLLOW
                opened = self._open_final(comp, parent, flags, mode, follow)
                if isinstance(opened, int):
                    if os.fstat(opened).st_dev != dev:
                        os.close(opened)
                        raise OSError(errno.EXDEV, "crosses a mount point")
                    return opened
                links = self._splice(parts, opened, links)
            # The path ended on a directory we already hold (root, or after '..').
            return os.open(".", flags, mode, dir_fd=stack[-1])
        finally:
            for fd in stack:
                os.close(fd)

    @staticmethod
    def _open_final(comp: str, parent: int, flags: int, mode: int, follow: bool) -> int | str:
        """Open the last component without following it; a symlink's target comes back as str."""
        try:
            fd = os.open(comp, flags | os.O_NOFOLLOW, mode, dir_fd=parent)
        except OSError as exc:
            if not follow or exc.errno not in (errno.ELOOP, errno.ENOTDIR):
                raise
            fd = os.open(comp, os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=parent)
            try:
                if not stat.S_ISLNK(os.fstat(fd).st_mode):
                    raise exc from None
                return os.readlink("", dir_fd=fd)
            finally:
                os.close(fd)
        if follow and flags & os.O_PATH and stat.S_ISLNK(os.fstat(fd).st_mode):
            # O_PATH|O_NOFOLLOW hands back the link itself; follow it like openat2 would.
            try:
                return os.readlink("", dir_fd=fd)
            finally:
                os.close(fd)
        return fd

    @staticmethod
    def _splice(parts: deque[str], target: str, links: int) -> int:
        links += 1
        if links > _MAX_SYMLINKS:
            raise OSError(errno.ELOOP, "too many symlinks")
        if target.startswith("/"):
            # Same rule as RESOLVE_BENEATH: an absolute target always escapes.
            raise OSError(errno.EXDEV, "absolute symlink")
        parts.extendleft(reversed(_components(target)))
        return links

    # ------------------------------------------------------------ policy checks

    def check_within(self, path: str, base: Location) -> None:
        """Check a path-like *command argument*: it must stay beneath a root.

        Unlike :meth:`open`, a path that does not exist yet is fine (``grep
        pat newfile``) as long as the existing part resolves beneath the root
        and the missing rest never climbs out with ``..``. The command itself
        runs in a mount namespace that only contains the roots, so this is a
        policy check that gives a clear ``scope_violation`` rather than the
        only line of defence.
        """
        loc = self.locate(path, base=base)
        try:
            fd = self.open(loc, os.O_PATH)
        except ActionError as exc:
            if exc.code == NOT_FOUND:
                if not lexically_beneath(loc.rel):
                    raise scope(f"{path!r} climbs outside the allowed roots") from None
                return
            if exc.code in (INTERNAL, SCOPE_VIOLATION):
                raise scope(f"{path!r} resolves outside the allowed roots") from None
            return
        os.close(fd)


def fd_path(fd: int) -> str:
    """The kernel's current name for an open fd (used only for bwrap ``--chdir``)."""
    return os.readlink(f"/proc/self/fd/{fd}")
