"""Run one command inside bubblewrap with rlimits, output caps and a hard timeout.

Why bubblewrap: the command line came from an untrusted LLM, and no amount of
parsing makes arbitrary programs safe. bwrap gives each run fresh namespaces
(no network, own PID tree, own mounts) where the only visible files are the
read-only system directories, a small tmpfs ``/tmp`` and the allowed roots —
bound from the root fds opened at start-up, not re-resolved by name. Roots are
read-only unless the user approved the command.

Limits (``limits.py``): rlimits via ``prlimit`` on bwrap, a per-run process
cap set *inside* the fresh user namespace, and a cgroup where one may be
created. Every writable filesystem is capped: ``/tmp`` and ``/dev/shm`` are
size-limited tmpfs, ``/dev`` and bwrap's own root tmpfs are remounted
read-only, so nothing else in the sandbox can take host memory.

The user's tools (``toolpath.py``): the project's ``.venv/bin`` and
``node_modules/.bin`` and the tool folders resolved from the user's PATH are
bound read-only and put on the sandbox PATH; nothing else of ``$HOME`` is.

Timeout: the bwrap process is the leader of its own process group; on timeout
we ``killpg`` it with SIGKILL. Its children die with it (``--die-with-parent``
sets PDEATHSIG and the PID namespace's init takes every process down).
"""

from __future__ import annotations

import contextlib
import os
import selectors
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from voco.local.sandbox.limits import (
    Cgroups,
    inner_nproc_prefix,
    preexec_limits,
    prlimit_prefix,
)
from voco.local.sandbox.toolpath import ToolEnv

MAX_TIMEOUT_S = 30.0
OUTPUT_CAP = 1 << 20  # bytes kept per stream
TMPFS_BYTES = 64 << 20
SHM_BYTES = 16 << 20
SANDBOX_PATH = "/usr/local/bin:/usr/bin:/bin"

# Enough of /etc for the dynamic linker, alternatives and libmagic; nothing
# with secrets or host identity (no passwd, hosts, ssh, ssl keys).
_ETC_FILES = (
    "/etc/ld.so.cache",
    "/etc/ld.so.conf",
    "/etc/ld.so.conf.d",
    "/etc/alternatives",
    "/etc/localtime",
    "/etc/magic",
    "/etc/magic.mime",
)
_TOP_DIRS = ("/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32")

# Command-line-level config (beats the repository's own): no fsmonitor, hooks,
# pager or editor programs; no bare repository git merely stumbled upon
# (``git -C tests/fixture.git log -p`` would use *its* config); signature
# checks can't start a repo-chosen gpg. Drivers, textconv and filters have no
# config-level off switch: repos defining them need approval (see gitconfig).
_GIT_OVERRIDES = (
    ("safe.bareRepository", "explicit"),
    ("core.fsmonitor", "false"),
    ("core.hooksPath", "/dev/null"),
    ("core.pager", "cat"),
    ("core.editor", "false"),
    ("core.sshCommand", "false"),
    ("gpg.program", "false"),
    ("gpg.ssh.program", "false"),
    ("gpg.x509.program", "false"),
    ("protocol.allow", "never"),
)
GIT_ENV = {
    "GIT_CONFIG_NOSYSTEM": "1",
    "GIT_CONFIG_GLOBAL": "/dev/null",
    "GIT_CONFIG_COUNT": str(len(_GIT_OVERRIDES)),
    **{f"GIT_CONFIG_KEY_{i}": k for i, (k, _) in enumerate(_GIT_OVERRIDES)},
    **{f"GIT_CONFIG_VALUE_{i}": v for i, (_, v) in enumerate(_GIT_OVERRIDES)},
    "GIT_TERMINAL_PROMPT": "0",
    "GIT_OPTIONAL_LOCKS": "0",
    "GIT_PAGER": "cat",
}

SANDBOX_TMP = "/tmp"  # noqa: S108 - a private tmpfs inside the sandbox, not the host's /tmp

SANDBOX_ENV = {
    "PATH": SANDBOX_PATH,
    "HOME": SANDBOX_TMP,
    "LANG": "C.UTF-8",
    "TERM": "dumb",
    "PAGER": "cat",
    **GIT_ENV,
}


@dataclass(frozen=True)
class Mount:
    """A root to expose: the O_PATH fd to bind and where it appears inside."""

    fd: int
    dest: str
    alias: str | None = None  # configured (unresolved) spelling, shown as a symlink


@dataclass(frozen=True)
class ExecResult:
    exit_code: int | None
    stdout: str
    stderr: str
    timed_out: bool
    duration_ms: int
    cancelled: bool = False  # killed because the session that asked for it ended


def bwrap_binary() -> str | None:
    if os.access("/usr/bin/bwrap", os.X_OK):
        return "/usr/bin/bwrap"
    return shutil.which("bwrap")


def _system_binds() -> list[str]:
    args = ["--ro-bind", "/usr", "/usr"]
    for d in _TOP_DIRS:
        if os.path.islink(d):
            args += ["--symlink", os.readlink(d), d]
        elif os.path.isdir(d):
            args += ["--ro-bind", d, d]
    for e in _ETC_FILES:
        args += ["--ro-bind-try", e, e]
    return args


def build_bwrap_argv(
    bwrap: str,
    mounts: Sequence[Mount],
    *,
    writable: bool,
    cwd: str,
    argv: Sequence[str],
    extra: Sequence[str] = (),
    tools: ToolEnv | None = None,
) -> list[str]:
    """The full bwrap command line (pure apart from looking at /bin & co)."""
    args = [
        bwrap,
        "--unshare-all",
        "--die-with-parent",
        "--new-session",
        "--clearenv",
        "--cap-drop",
        "ALL",
        *extra,
        *_system_binds(),
        "--proc",
        "/proc",
        # bwrap's /dev is a tmpfs holding a few device nodes: read-only, so only
        # the capped /dev/shm below is writable (an uncapped one took 600 MB).
        "--dev",
        "/dev",
        "--remount-ro",
        "/dev",
        "--size",
        str(SHM_BYTES),
        "--tmpfs",
        "/dev/shm",  # noqa: S108 - a private capped tmpfs inside the sandbox
        "--size",
        str(TMPFS_BYTES),
        "--tmpfs",
        SANDBOX_TMP,
    ]
    bind = "--bind-fd" if writable else "--ro-bind-fd"
    tool_dirs = tools.mounts if tools is not None else ()
    binds = [(m.dest, [bind, str(m.fd), m.dest]) for m in mounts]
    binds += [(d, ["--ro-bind", d, d]) for d in tool_dirs]
    for _dest, op in sorted(binds, key=lambda b: len(b[0])):
        args += op
    dests = [m.dest for m in mounts] + list(tool_dirs)
    for m in mounts:
        # The configured spelling of a symlinked root, as a symlink — unless it
        # would have to be created inside a (read-only) bound root or system dir.
        alias = m.alias
        if not alias or alias == m.dest or _is_system_path(alias):
            continue
        if not any(alias.startswith(d + "/") for d in dests):
            args += ["--symlink", m.dest, alias]
    # Last: bwrap's root tmpfs (where mount points were made) becomes read-only.
    args += ["--remount-ro", "/"]
    env = dict(SANDBOX_ENV)
    if tools is not None:
        env.update(tools.env)
        env["PATH"] = tools.path
    for key, value in env.items():
        args += ["--setenv", key, value]
    args += ["--chdir", cwd, "--", *inner_nproc_prefix(), *argv]
    return args


def _is_system_path(path: str) -> bool:
    return any(path == d or path.startswith(d + "/") for d in ("/usr", "/proc", "/dev", "/etc"))


# ------------------------------------------------------------------ availability

Status = tuple[bool, str, tuple[str, ...]]
PROBE_BACKOFF_S = (5.0, 15.0, 60.0, 300.0)


class Prober:
    """Caches whether bwrap works; a failure is re-probed with backoff.

    A probe can fail for a passing reason (a slow start under load hit the
    timeout), and a long-running ``voco local`` must not stay unable to run
    commands until restarted. Success is kept; failure is kept only until
    ``retry_at`` (5 s, 15 s, 60 s, then every 300 s), and the reason says
    when the next try is. ``clock`` is injected so tests need not sleep.
    """

    def __init__(
        self,
        probe: Callable[[], Status],
        clock: Callable[[], float] = time.monotonic,
        backoff: Sequence[float] = PROBE_BACKOFF_S,
    ) -> None:
        self._probe = probe
        self._clock = clock
        self._backoff = tuple(backoff)
        self._lock = threading.Lock()
        self._result: Status | None = None
        self._failures = 0
        self._retry_at = 0.0

    def status(self) -> Status:
        with self._lock:
            now = self._clock()
            if self._result is None or (not self._result[0] and now >= self._retry_at):
                self._result = self._probe()
                if self._result[0]:
                    self._failures = 0
                else:
                    wait = self._backoff[min(self._failures, len(self._backoff) - 1)]
                    self._failures += 1
                    self._retry_at = now + wait
            ok, why, extra = self._result
            if ok:
                return self._result
            left = max(0.0, self._retry_at - now)
            return False, f"{why} (will try again in {left:.0f} s)", extra


def sandbox_status() -> Status:
    """Whether bwrap can create a sandbox here: (usable, why not, extra flags).

    Probed by actually running ``true`` inside a sandbox: bwrap being
    installed is not enough (user namespaces may be disabled).
    """
    return _PROBER.status()


def _probe() -> tuple[bool, str, tuple[str, ...]]:
    bwrap = bwrap_binary()
    if bwrap is None:
        return False, "bubblewrap (bwrap) is not installed", ()
    last = ""
    for extra in (("--unshare-user", "--disable-userns"), ()):
        argv = build_bwrap_argv(bwrap, [], writable=False, cwd="/", argv=["true"], extra=extra)
        try:
            proc = subprocess.run(argv, capture_output=True, timeout=10, check=False)
        except (OSError, subprocess.TimeoutExpired) as exc:
            return False, f"bubblewrap failed to start: {exc}", ()
        if proc.returncode == 0:
            return True, "", extra
        last = proc.stderr.decode("utf-8", "replace").strip()
    return False, f"bubblewrap cannot create a sandbox here: {last}", ()


_PROBER = Prober(_probe)
_CGROUPS: Cgroups | None = None
_cgroups_lock = threading.Lock()


def cgroups() -> Cgroups:
    """The process-wide per-run cgroup factory, found on first use."""
    global _CGROUPS
    with _cgroups_lock:
        if _CGROUPS is None:
            _CGROUPS = Cgroups()
        return _CGROUPS


# ------------------------------------------------------------------ running


class _Capture:
    """Keeps the first ``OUTPUT_CAP`` bytes of a stream and counts the rest."""

    def __init__(self) -> None:
        self.buf = bytearray()
        self.dropped = 0

    def feed(self, data: bytes) -> None:
        room = OUTPUT_CAP - len(self.buf)
        if room > 0:
            self.buf += data[:room]
        self.dropped += max(0, len(data) - max(room, 0))

    def text(self) -> str:
        out = self.buf.decode("utf-8", "replace")
        if self.dropped:
            out += f"\n[voco: output truncated, {self.dropped} more bytes dropped]"
        return out


def run_sandboxed(
    argv: Sequence[str],
    *,
    mounts: Sequence[Mount],
    cwd: str,
    writable: bool,
    timeout_s: float,
    cancel: threading.Event | None = None,
    tools: ToolEnv | None = None,
) -> ExecResult:
    """Run ``argv`` in a fresh bwrap sandbox. The caller has checked ``sandbox_status``."""
    ok, why, extra = sandbox_status()
    bwrap = bwrap_binary()
    if not ok or bwrap is None:
        raise RuntimeError(why or "no OS sandbox available")
    timeout_s = max(0.1, min(MAX_TIMEOUT_S, timeout_s))
    prefix = prlimit_prefix(timeout_s)
    group = cgroups().create()
    full = [
        *(group.join_prefix() if group is not None else []),
        *(prefix or []),
        *build_bwrap_argv(
            bwrap, mounts, writable=writable, cwd=cwd, argv=argv, extra=extra, tools=tools
        ),
    ]
    try:
        return _run(full, mounts, timeout_s, prefix is not None, cancel)
    finally:
        if group is not None:
            cgroups().release(group)


def _run(
    full: list[str],
    mounts: Sequence[Mount],
    timeout_s: float,
    have_prlimit: bool,
    cancel: threading.Event | None,
) -> ExecResult:
    start = time.monotonic()
    deadline = start + timeout_s
    proc = subprocess.Popen(
        full,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        pass_fds=tuple(m.fd for m in mounts),
        start_new_session=True,
        close_fds=True,
        env={"PATH": SANDBOX_PATH, "LANG": "C.UTF-8"},
        preexec_fn=None if have_prlimit else preexec_limits(timeout_s),
    )
    out, err = _Capture(), _Capture()
    timed_out = False
    try:
        timed_out = _pump(proc, out, err, deadline, cancel)
        cancelled = cancel is not None and cancel.is_set()
        if cancelled:
            timed_out = False
        elif not timed_out:
            try:
                proc.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                timed_out = True
    finally:
        if timed_out or (cancel is not None and cancel.is_set()) or proc.poll() is None:
            _kill(proc)
        for pipe in (proc.stdout, proc.stderr):
            if pipe is not None:
                pipe.close()
    duration_ms = int((time.monotonic() - start) * 1000)
    code = proc.returncode
    if cancelled:
        return ExecResult(None, out.text(), err.text(), False, duration_ms, cancelled=True)
    exit_code = None if timed_out else (128 - code if code is not None and code < 0 else code)
    return ExecResult(exit_code, out.text(), err.text(), timed_out, duration_ms)


def _pump(
    proc: subprocess.Popen[bytes],
    out: _Capture,
    err: _Capture,
    deadline: float,
    cancel: threading.Event | None = None,
) -> bool:
    """Read both pipes until EOF, the deadline or a cancel; True if the deadline hit."""
    sel = selectors.DefaultSelector()
    try:
        for pipe, cap in ((proc.stdout, out), (proc.stderr, err)):
            if pipe is not None:
                os.set_blocking(pipe.fileno(), False)
                sel.register(pipe, selectors.EVENT_READ, cap)
        while sel.get_map():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return True
            if cancel is not None and cancel.is_set():
                return False
            for key, _ in sel.select(timeout=min(remaining, 0.1)):
                try:
                    data = os.read(key.fd, 65536)
                except BlockingIOError:
                    continue
                if not data:
                    sel.unregister(key.fileobj)
                    continue
                sink: _Capture = key.data
                sink.feed(data)
        return False
    finally:
        sel.close()


def _kill(proc: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    with contextlib.suppress(ProcessLookupError):
        proc.kill()
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=5)
