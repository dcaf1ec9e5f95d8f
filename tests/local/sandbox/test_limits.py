"""Limits of one sandboxed run (issue 12 #4) and the probe's backoff.

The attacks run only inside the OS sandbox; the pure parts (cgroup layout,
probe clock) run everywhere.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

import pytest

from voco.local.sandbox import Sandbox
from voco.local.sandbox.execute import Prober
from voco.local.sandbox.limits import Cgroups, inner_nproc_prefix

from .helpers import Tree, approve_all, call, needs_bwrap

FORK_300 = (
    "python3 -c '\n"
    "import os, time\n"
    "n = 0\n"
    "for _ in range(300):\n"
    "    try:\n"
    "        pid = os.fork()\n"
    "    except OSError:\n"
    "        break\n"
    "    if pid == 0:\n"
    "        time.sleep(20)\n"
    "        os._exit(0)\n"
    "    n += 1\n"
    'print("forked", n)\n'
    "'"
)


@needs_bwrap
@pytest.mark.timeout(60)
def test_300_processes_are_stopped(tree: Tree, make_sandbox: Callable[..., Sandbox]) -> None:
    resp = call(make_sandbox(approve_all), "execute_command", command=FORK_300, timeout_s=20)
    assert resp.status == "success", resp
    forked = int(resp.result["stdout"].split()[-1])
    assert forked < 300, resp.result


@needs_bwrap
@pytest.mark.timeout(60)
def test_fork_bomb_ends(tree: Tree, make_sandbox: Callable[..., Sandbox]) -> None:
    # The classic bomb; it must neither take the machine nor outlive its run.
    resp = call(
        make_sandbox(approve_all),
        "execute_command",
        command="bomb() { bomb | bomb & }; bomb; sleep 2; echo survived",
        timeout_s=10,
    )
    assert resp.code in (None, "timeout"), resp
    follow = call(make_sandbox(approve_all), "execute_command", command="echo next")
    assert follow.result["stdout"] == "next\n"


@needs_bwrap
@pytest.mark.timeout(60)
@pytest.mark.parametrize("target", ["/dev/big", "/dev/shm/big", "/tmp/big", "/big"])
def test_600_mb_into_a_tmpfs_fails(
    tree: Tree, make_sandbox: Callable[..., Sandbox], target: str
) -> None:
    # Written from Python so the path is not an operand the policy check sees:
    # the mount namespace, not the scope check, is what has to stop this.
    code = (
        f"p = chr(47) + {target[1:]!r}\n"
        "written = 0\n"
        "try:\n"
        "    with open(p, 'wb') as f:\n"
        "        for _ in range(600):\n"
        "            f.write(bytes(1 << 20))\n"
        "            f.flush()\n"
        "            written += 1 << 20\n"
        "    print('ok', written)\n"
        "except OSError as exc:\n"
        "    print('failed', written, exc.errno)\n"
    )
    resp = call(make_sandbox(approve_all), "execute_command", argv=["python3", "-c", code])
    assert resp.status == "success", resp
    verdict, written = resp.result["stdout"].split()[:2]
    assert verdict == "failed", resp.result
    assert int(written) <= 64 << 20, resp.result


@needs_bwrap
def test_dev_null_still_works(tree: Tree, make_sandbox: Callable[..., Sandbox]) -> None:
    resp = call(make_sandbox(approve_all), "execute_command", command="echo x > /dev/null; echo ok")
    assert resp.result["stdout"] == "ok\n", resp


def test_inner_cap_is_applied_inside_the_namespace() -> None:
    prefix = inner_nproc_prefix(99)
    if os.geteuid() == 0:
        assert prefix == []  # void for root: the cgroup is what caps it
    else:
        assert "--nproc=99" in prefix or "ulimit -u 99" in " ".join(prefix)


def test_cgroup_layout_v1(tmp_path: Path) -> None:
    pids, mem = tmp_path / "pids", tmp_path / "memory"
    pids.mkdir()
    mem.mkdir()
    cg = Cgroups({"pids": pids, "memory": mem}, pids_max=77, memory_max=1 << 30)
    run = cg.create()
    assert run is not None and len(run.dirs) == 2
    d_mem, d_pids = run.dirs
    assert (d_pids / "pids.max").read_text() == "77"
    assert (d_mem / "memory.limit_in_bytes").read_text() == str(1 << 30)
    script = run.join_prefix()[2]
    assert f"{d_pids}/cgroup.procs" in script and f"{d_mem}/cgroup.procs" in script
    assert script.endswith('exec "$@"')
    cg.release(run)  # empty (no cgroup.procs entries): pooled for the next run
    assert cg.create() == run
    cg.release(run)
    # The fake directories hold files, so rmdir fails: kept and retried later.
    cg.close()
    assert d_pids.exists()
    for d in run.dirs:
        for f in d.iterdir():
            f.unlink()
    cg.close()  # retries the stale ones
    assert not d_pids.exists() and not d_mem.exists()


def test_no_cgroup_means_rlimits_only() -> None:
    assert Cgroups({}).create() is None


class _Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_failed_probe_is_retried_with_backoff_and_says_when() -> None:
    clock = _Clock()
    results = [(False, "slow start", ()), (False, "still slow", ()), (True, "", ("--x",))]
    calls: list[float] = []

    def probe() -> tuple[bool, str, tuple[str, ...]]:
        calls.append(clock.now)
        return results[len(calls) - 1]

    p = Prober(probe, clock, backoff=(5.0, 15.0))
    ok, why, _ = p.status()
    assert not ok and "slow start" in why and "try again in 5 s" in why
    clock.now += 3
    ok, why, _ = p.status()
    assert not ok and "try again in 2 s" in why and len(calls) == 1  # cached until due
    clock.now += 2
    ok, why, _ = p.status()
    assert not ok and "still slow" in why and "try again in 15 s" in why and len(calls) == 2
    clock.now += 15
    assert p.status() == (True, "", ("--x",)) and len(calls) == 3
    clock.now += 10_000
    assert p.status()[0] and len(calls) == 3  # success is kept


_UNPRIVILEGED_RUN = """
import sys
sys.path[:0] = {paths!r}
from voco.local.sandbox.execute import run_sandboxed
code = {code!r}
r = run_sandboxed(["python3", "-c", code], mounts=[], cwd="/", writable=False, timeout_s=20)
print(r.stdout.strip())
"""


def _unprivileged_python() -> str | None:
    """A system interpreter matching ours, to run the sandbox as ``nobody``."""
    exe = f"/usr/bin/python{sys.version_info.major}.{sys.version_info.minor}"
    ok = os.geteuid() == 0 and shutil.which("setpriv") and os.access(exe, os.X_OK)
    return exe if ok else None


@needs_bwrap
@pytest.mark.timeout(60)
@pytest.mark.skipif(_unprivileged_python() is None, reason="needs root, setpriv, system python")
def test_300_processes_are_stopped_for_an_ordinary_user() -> None:
    """The common case: Voco runs as a normal user, the inner RLIMIT_NPROC counts
    only the run's own user namespace (no cgroup needed)."""
    src = str(Path(__file__).resolve().parents[3] / "src")
    site = [p for p in sys.path if p.endswith("site-packages")]
    code = FORK_300.split("'", 1)[1].rsplit("'", 1)[0]
    work = tempfile.mkdtemp(prefix="voco-nproc-")
    try:
        os.chmod(work, 0o755)
        script = Path(work) / "run.py"
        script.write_text(_UNPRIVILEGED_RUN.format(paths=[src, *site], code=code))
        script.chmod(0o644)
        proc = subprocess.run(
            [
                "setpriv",
                "--reuid",
                "65534",
                "--regid",
                "65534",
                "--clear-groups",
                "--",
                str(_unprivileged_python()),
                str(script),
            ],
            capture_output=True,
            text=True,
            timeout=50,
            check=False,
            cwd=work,
            env={"PATH": "/usr/bin:/bin", "HOME": work, "VOCO_HOME": f"{work}/vh"},
        )
    finally:
        shutil.rmtree(work, ignore_errors=True)
    if proc.returncode != 0 and "Permission denied" in proc.stderr:
        pytest.skip(f"this checkout is not readable by nobody: {proc.stderr[-200:]}")
    assert proc.returncode == 0, proc.stderr
    forked = int(proc.stdout.split()[-1])
    assert forked < 300, proc.stdout
