"""Process facts both runtimes need (the embedded Postgres's handle file, the
sandbox's cgroup sweep), kept in one place so they agree on what "alive" means."""

from __future__ import annotations

import os


def pid_alive(pid: int) -> bool:
    """True if ``pid`` names a live process, ours or not (EPERM still means alive)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
