"""Run one command inside bubblewrap with rlimits, output caps and a hard timeout.

Why bubblewrap: the command line came from an untrusted LLM, and no amount of
parsing makes arbitrary programs safe. bwrap gives each run fresh namespaces
(no network, own PID tree, own mounts) where the only visible files are the
read-only system directories, a small tmpfs ``/tmp`` and the allowed roots —
bound from the root fds opened at start-up, not re-resolved by name. Roots are
read-only unless the user approved the command.

Why ``prlimit`` (the util-linux binary) rather than ``preexec_fn``: the sandbox
runs in worker threads, and ``preexec_fn`` is not safe in a threaded process.

Timeout: the bwrap process is the leader of its own process group; on timeout
we ``killpg`` it with SIGKILL. Its children die with it (``--die-with-parent``
sets PDEATHSIG and the PID namespace's init takes every process down).
"""

from __future__ import annotations

import contextlib
import os
import resource
import selectors
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

MAX_TIMEOUT_S = 30.0
OUTPUT_CAP = 1 << 20  # bytes kept per stream
TMPFS_BYTES = 64 << 20
RLIMIT_FSIZE = 256 << 20
RLIMIT_AS = 4 << 30
RLIMIT_NOFILE = 1024
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
        "--dev",
        "/dev",
        "--size",
        str(TMPFS_BYTES),
        "--tmpfs",
        SANDBOX_TMP,
    ]
    bind = "--bind-fd" if writable else "--ro-bind-fd"
    for m in sorted(mounts, key=lambda m: len(m.dest)):
        args += [bind, str(m.fd), m.dest]
    dests = [m.dest for m in mounts]
    for m in mounts:
        # The configured spelling of a symlinked root, as a symlink — unless it
        # would have to be created inside a (read-only) bound root or system dir.
        alias = m.alias
        if not alias or alias == m.dest or _is_system_path(alias):
            continue
        if not any(alias.startswith(d + "/") for d in dests):
            args += ["--symlink", m.dest, alias]
    for key, value in SANDBOX_ENV.items():
        args += ["--setenv", key, value]
    args += ["--chdir", cwd, "--", *argv]
    return args


def _is_system_path(path: str) -> bool:
    return any(path == d or path.startswith(d + "/") for d in ("/usr", "/proc", "/dev", "/etc"))


def _rlimits(timeout_s: float) -> dict[int, int]:
    return {
        resource.RLIMIT_CPU: int(timeout_s) + 2,
        resource.RLIMIT_FSIZE: RLIMIT_FSIZE,
        resource.RLIMIT_AS: RLIMIT_AS,
        resource.RLIMIT_NOFILE: RLIMIT_NOFILE,
        resource.RLIMIT_CORE: 0,
    }


def _prlimit_prefix(timeout_s: float) -> list[str] | None:
    prlimit = (
        "/usr/bin/prlimit" if os.access("/usr/bin/prlimit", os.X_OK) else shutil.which("prlimit")
    )
    if prlimit is None:
        return None
    names = {
        resource.RLIMIT_CPU: "cpu",
        resource.RLIMIT_FSIZE: "fsize",
        resource.RLIMIT_AS: "as",
        resource.RLIMIT_NOFILE: "nofile",
        resource.RLIMIT_CORE: "core",
    }
    return [prlimit, *(f"--{names[k]}={v}" for k, v in _rlimits(timeout_s).items()), "--"]


def _preexec_limits(timeout_s: float) -> Callable[[], None]:
    """Fallback when the prlimit binary is missing: set limits in the child.

    ``preexec_fn`` is documented as unsafe with threads because the child may
    need a lock another thread held at fork; ``setrlimit`` takes none, so this
    is the narrow, accepted use.
    """
    limits = _rlimits(timeout_s)

    def apply() -> None:
        for key, value in limits.items():
            resource.setrlimit(key, (value, value))

    return apply


# ------------------------------------------------------------------ availability

_probe_lock = threading.Lock()
_probe_result: tuple[bool, str, tuple[str, ...]] | None = None


def sandbox_status() -> tuple[bool, str, tuple[str, ...]]:
    """Whether bwrap can create a sandbox here: (usable, why not, extra flags).

    Probed once per process by actually running ``true`` inside a sandbox:
    bwrap being installed is not enough (user namespaces may be disabled).
    """
    global _probe_result
    with _probe_lock:
        if _probe_result is None:
            _probe_result = _probe()
        return _probe_result


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
) -> ExecResult:
    """Run ``argv`` in a fresh bwrap sandbox. The caller has checked ``sandbox_status``."""
    ok, why, extra = sandbox_status()
    bwrap = bwrap_binary()
    if not ok or bwrap is None:
        raise RuntimeError(why or "no OS sandbox available")
    timeout_s = max(0.1, min(MAX_TIMEOUT_S, timeout_s))
    prefix = _prlimit_prefix(timeout_s)
    full = [
        *(prefix or []),
        *build_bwrap_argv(bwrap, mounts, writable=writable, cwd=cwd, argv=argv, extra=extra),
    ]
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
        preexec_fn=None if prefix is not None else _preexec_limits(timeout_s),
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
