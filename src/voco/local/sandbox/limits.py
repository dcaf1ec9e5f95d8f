"""Resource limits for one sandboxed run: rlimits, a process cap, and a cgroup where we may.

Why three layers:

- **rlimits** (``prlimit`` before bwrap): CPU, file size, address space, data
  segment, open files, no core dumps. Per process, so they bound one runaway
  program, not a swarm.
- **RLIMIT_NPROC inside the sandbox**: the kernel counts processes per user
  *per user namespace* (ucounts), and bwrap gives every run a fresh user
  namespace, so a cap set *inside* it (an inner ``prlimit --nproc``) is a
  per-run cap. Set outside, it would also be compared with the user's total
  process count on the host and break ordinary desktops. The kernel exempts
  the global root uid from RLIMIT_NPROC, so when Voco runs as root this layer
  is void and only the cgroup below stops a fork bomb.
- **a cgroup** (``pids.max``, memory limit), when this process may create one:
  cgroup v1 ``pids``/``memory`` hierarchies or a cgroup v2 directory (our own
  cgroup when it is the root of a delegated tree, or ``$VOCO_SANDBOX_CGROUP``).
  The launcher joins the run's cgroup with a tiny ``sh`` before exec'ing
  bwrap, so nothing of the sandbox ever runs outside it. No cgroup → rlimits
  only (documented in docs/sandbox.md).
"""

from __future__ import annotations

import atexit
import contextlib
import itertools
import logging
import os
import resource
import shlex
import shutil
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from voco.common.processes import pid_alive

log = logging.getLogger(__name__)

RLIMIT_FSIZE = 256 << 20
RLIMIT_AS = 4 << 30
RLIMIT_DATA = 2 << 30
RLIMIT_NOFILE = 1024
NPROC_CAP = 256  # processes *and threads* of one run
MEMORY_CAP = 2 << 30  # bytes for the whole run (cgroup only)
_POOL = 4  # emptied run cgroups kept for reuse

_CGROUP_FS = Path("/sys/fs/cgroup")


def _binary(name: str) -> str | None:
    for d in ("/usr/bin", "/bin"):
        if os.access(f"{d}/{name}", os.X_OK):
            return f"{d}/{name}"
    return shutil.which(name)


def rlimits(timeout_s: float) -> dict[int, int]:
    return {
        resource.RLIMIT_CPU: int(timeout_s) + 2,
        resource.RLIMIT_FSIZE: RLIMIT_FSIZE,
        resource.RLIMIT_AS: RLIMIT_AS,
        resource.RLIMIT_DATA: RLIMIT_DATA,
        resource.RLIMIT_NOFILE: RLIMIT_NOFILE,
        resource.RLIMIT_CORE: 0,
    }


_NAMES = {
    resource.RLIMIT_CPU: "cpu",
    resource.RLIMIT_FSIZE: "fsize",
    resource.RLIMIT_AS: "as",
    resource.RLIMIT_DATA: "data",
    resource.RLIMIT_NOFILE: "nofile",
    resource.RLIMIT_CORE: "core",
}


def prlimit_prefix(timeout_s: float) -> list[str] | None:
    """``prlimit --cpu=… --`` applied to bwrap (inherited by everything inside)."""
    prlimit = _binary("prlimit")
    if prlimit is None:
        return None
    return [prlimit, *(f"--{_NAMES[k]}={v}" for k, v in rlimits(timeout_s).items()), "--"]


def preexec_limits(timeout_s: float) -> Callable[[], None]:
    """Fallback when the prlimit binary is missing: set limits in the child.

    ``preexec_fn`` is documented as unsafe with threads because the child may
    need a lock another thread held at fork; ``setrlimit`` takes none, so this
    is the narrow, accepted use.
    """
    limits = rlimits(timeout_s)

    def apply() -> None:
        for key, value in limits.items():
            resource.setrlimit(key, (value, value))

    return apply


def inner_nproc_prefix(cap: int = NPROC_CAP) -> list[str]:
    """What runs first *inside* bwrap to cap the run's processes (see module doc).

    ``prlimit`` lives in ``/usr/bin`` (visible inside); without it, bash's
    ``ulimit -u`` does the same before exec'ing the command.
    """
    if os.geteuid() == 0:
        return []  # the kernel ignores RLIMIT_NPROC for root: save the exec (cgroup only)
    prlimit = _binary("prlimit")
    if prlimit is not None and prlimit.startswith(("/usr/", "/bin/")):
        return [prlimit, f"--nproc={cap}", "--"]
    return ["/bin/bash", "-c", f'ulimit -u {cap} && exec "$@"', "voco-limit"]


# ------------------------------------------------------------------ cgroups


@dataclass(frozen=True)
class CgroupRun:
    """One run's cgroup directories (one per v1 hierarchy, or one v2 dir)."""

    dirs: tuple[Path, ...]

    def join_prefix(self) -> list[str]:
        """``sh -c 'echo $$ > …/cgroup.procs && exec "$@"'``: the launcher moves
        itself into the cgroup *before* exec'ing prlimit/bwrap."""
        writes = " && ".join(f"echo $$ > {shlex.quote(str(d / 'cgroup.procs'))}" for d in self.dirs)
        return ["/bin/sh", "-c", f'{writes} && exec "$@"', "voco-cgroup"]


class Cgroups:
    """Creates a cgroup per run under parents found (or configured) once.

    ``base`` is injectable so the file layout can be tested on a plain
    directory; on a real cgroupfs the kernel fills in the control files.
    """

    def __init__(
        self,
        parents: dict[str, Path] | None = None,
        *,
        pids_max: int = NPROC_CAP,
        memory_max: int = MEMORY_CAP,
    ) -> None:
        self._parents = parents if parents is not None else discover_parents()
        self.pids_max = pids_max
        self.memory_max = memory_max
        self._counter = itertools.count()
        self._lock = threading.Lock()
        self._stale: list[Path] = []
        self._free: list[CgroupRun] = []
        self._reap_dead()
        atexit.register(self.close)

    @property
    def available(self) -> bool:
        return bool(self._parents)

    def describe(self) -> str:
        return ", ".join(f"{k}:{v}" for k, v in sorted(self._parents.items())) or "none"

    def create(self) -> CgroupRun | None:
        """A fresh cgroup with the caps written, or None (then rlimits only)."""
        if not self._parents:
            return None
        with self._lock:
            if self._free:
                return self._free.pop()
        self._reap()
        name = f"voco-run-{os.getpid()}-{next(self._counter)}"
        made: list[Path] = []
        try:
            for kind, parent in sorted(self._parents.items()):
                d = parent / name
                d.mkdir()
                made.append(d)
                if kind == "v2":
                    _write(d / "pids.max", str(self.pids_max))
                    _write(d / "memory.max", str(self.memory_max))
                    with contextlib.suppress(OSError):
                        _write(d / "memory.swap.max", "0")
                elif kind == "pids":
                    _write(d / "pids.max", str(self.pids_max))
                elif kind == "memory":
                    _write(d / "memory.limit_in_bytes", str(self.memory_max))
        except OSError as exc:
            log.warning("sandbox cgroup unavailable, falling back to rlimits: %s", exc)
            for d in made:
                with contextlib.suppress(OSError):
                    d.rmdir()
            return None
        return CgroupRun(tuple(made))

    def release(self, run: CgroupRun, *, drain_s: float = 1.0) -> None:
        """Pool the run's cgroups if empty, else remove them. The PID namespace
        is gone by now, but its processes may take a moment to be reaped, so
        wait briefly for the cgroup to empty; one still busy is retried on the
        next run (and a dead process's leftovers when the next
        :class:`Cgroups` starts)."""
        # Reuse an emptied cgroup: creating and removing one (memory above all)
        # costs more than the rest of a run's setup. Its pids count is back to 0.
        if not any(_has_procs(d) for d in run.dirs):
            with self._lock:
                if len(self._free) < _POOL:
                    self._free.append(run)
                    return
        self._remove(run, drain_s)

    def close(self) -> None:
        """Remove pooled cgroups (at exit; leftovers of a crash go at the next start)."""
        with self._lock:
            free, self._free = self._free, []
        for run in free:
            self._remove(run, 0.1)
        self._reap()

    def _remove(self, run: CgroupRun, drain_s: float) -> None:
        deadline = time.monotonic() + drain_s
        for d in run.dirs:
            with contextlib.suppress(OSError):
                _write(d / "cgroup.kill", "1")  # v2: anything left, gone
            while True:
                try:
                    d.rmdir()
                    break
                except FileNotFoundError:
                    break
                except OSError:
                    if time.monotonic() >= deadline or not _has_procs(d):
                        with self._lock:
                            self._stale.append(d)
                        break
                    time.sleep(0.005)

    def _reap_dead(self) -> None:
        """Leftovers of runs whose Voco process died (named after its pid)."""
        for parent in self._parents.values():
            try:
                names = os.listdir(parent)
            except OSError:
                continue
            for name in names:
                parts = name.split("-")
                ours = len(parts) == 4 and name.startswith("voco-run-") and parts[2].isdigit()
                if ours and not pid_alive(int(parts[2])):
                    with self._lock:
                        self._stale.append(parent / name)

    def _reap(self) -> None:
        with self._lock:
            stale, self._stale = self._stale, []
        for d in stale:
            try:
                d.rmdir()
            except FileNotFoundError:
                pass
            except OSError:
                with self._lock:
                    self._stale.append(d)


def _has_procs(d: Path) -> bool:
    try:
        return bool((d / "cgroup.procs").read_text().strip())
    except OSError:
        return False


def _write(path: Path, value: str) -> None:
    with open(path, "w") as f:
        f.write(value)


def _own_cgroups() -> dict[str, str]:
    """Controller → our cgroup path, from /proc/self/cgroup ('' key = v2)."""
    out: dict[str, str] = {}
    try:
        text = Path("/proc/self/cgroup").read_text()
    except OSError:
        return out
    for line in text.splitlines():
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        for ctrl in parts[1].split(",") if parts[1] else [""]:
            out[ctrl] = parts[2]
    return out


def discover_parents(fs: Path = _CGROUP_FS) -> dict[str, Path]:
    """Where this process may create per-run cgroups, nested under its own."""
    configured = os.environ.get("VOCO_SANDBOX_CGROUP")
    own = _own_cgroups()
    if configured:
        p = Path(configured)
        return {"v2": p} if _v2_ready(p) else {}
    if (fs / "cgroup.controllers").exists():  # pure v2
        p = fs / own.get("", "/").lstrip("/")
        return {"v2": p} if _v2_ready(p) else {}
    found: dict[str, Path] = {}
    for ctrl in ("pids", "memory"):
        p = fs / ctrl / own.get(ctrl, "/").lstrip("/")
        if p.is_dir() and os.access(p, os.W_OK):
            found[ctrl] = p
    return found if "pids" in found else {}


def _v2_ready(p: Path) -> bool:
    """Can children of ``p`` get pids and memory limits? Enables them if we may."""
    ctl = p / "cgroup.subtree_control"
    if not os.access(ctl, os.W_OK):
        return False
    with contextlib.suppress(OSError):
        _write(ctl, "+pids +memory")
    try:
        enabled = ctl.read_text().split()
    except OSError:
        return False
    return "pids" in enabled and "memory" in enabled
