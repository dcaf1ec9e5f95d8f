"""Low 10: a mount point inside a root is never crossed (openat2 and the fallback walk)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from voco.local.sandbox.errors import ActionError
from voco.local.sandbox.paths import Resolver

pytestmark = pytest.mark.timeout(60)

_SCRIPT = textwrap.dedent(
    """
    import json, os, subprocess, sys
    from voco.local.sandbox.errors import ActionError
    from voco.local.sandbox.paths import Resolver
    root = sys.argv[1]
    os.makedirs(root + "/p")
    os.makedirs(root + "/b")
    subprocess.run(["mount", "-t", "proc", "proc", root + "/p"], check=True)
    subprocess.run(["mount", "--bind", sys.argv[2], root + "/b"], check=True)
    out = {}
    for mode in ("openat2", "walk"):
        r = Resolver([root], force_fallback=(mode == "walk"))
        for path in ("p/self/environ", "p/1/environ", "p", "b/secret"):
            try:
                fd, _ = r.open_path(path, os.O_RDONLY)
                os.close(fd)
                out[f"{mode}:{path}"] = "opened"
            except ActionError as exc:
                out[f"{mode}:{path}"] = exc.code
        r.close()
    print(json.dumps(out))
    """
)


def test_proc_and_bind_mounts_inside_a_root_are_scope_violations(tmp_path: Path, tree) -> None:
    unshare = shutil.which("unshare")
    if unshare is None or os.geteuid() != 0:
        pytest.skip("SKIPPED: needs root and unshare(1) to mount inside a private namespace")
    root = tmp_path / "mroot"
    argv = [unshare, "-m", "--propagation", "private", sys.executable, "-c", _SCRIPT]
    proc = subprocess.run(
        [*argv, str(root), str(tree.outside)],
        capture_output=True,
        text=True,
        timeout=50,
        check=False,
    )
    if proc.returncode != 0 and "mount" in proc.stderr and "permission" in proc.stderr.lower():
        pytest.skip(f"SKIPPED: cannot mount in a private namespace here: {proc.stderr[-300:]}")
    assert proc.returncode == 0, proc.stderr
    got = json.loads(proc.stdout)
    for mode in ("openat2", "walk"):
        for path in ("p/self/environ", "p/1/environ", "p"):
            assert got[f"{mode}:{path}"] == "scope_violation", (mode, path, got)
    # A bind mount of the same filesystem: only openat2 can tell (mount ids);
    # the fallback's st_dev check cannot — documented in docs/sandbox.md.
    assert got["openat2:b/secret"] == "scope_violation", got


def test_fallback_walk_refuses_a_host_mount_point() -> None:
    """The O_NOFOLLOW walk compares st_dev at each step, like RESOLVE_NO_XDEV."""
    if os.stat("/dev").st_dev == os.stat("/dev/shm").st_dev:
        pytest.skip("SKIPPED: /dev/shm is not a separate mount on this host")
    for fallback in (True, False):
        r = Resolver([Path("/dev")], force_fallback=fallback)
        try:
            with pytest.raises(ActionError) as exc:
                r.open_path("shm", os.O_PATH)
            assert exc.value.code == "scope_violation"
            with pytest.raises(ActionError):
                r.open_path("shm/.", os.O_PATH)
        finally:
            r.close()
