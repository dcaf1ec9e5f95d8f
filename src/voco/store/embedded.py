"""The embedded default: a real PostgreSQL 16 run by the engine itself.

A developer running ``voco serve`` should get durable conversations without
installing or configuring a database, and with the *same* SQL the production
deployment (Supabase) runs, so there is one store implementation, not a
SQLite look-alike. The PyPI package ``pgserver`` ships the PostgreSQL binaries
and starts a private server on a Unix socket inside the data directory (no TCP
port, nothing to collide with); the first start runs ``initdb`` (~2.5 s),
later starts take ~0.15 s.

Running as root (CI containers): PostgreSQL refuses to run as root, so
``pgserver`` creates a system user ``pgserver`` (``useradd``), chowns the data
directory to it, makes every ancestor directory traversable (``g+rx,o+rx``)
and runs ``initdb``/``pg_ctl`` as that user. That works unchanged here; the
cost is that ancestors of the data directory (e.g. ``/root`` for
``~/.voco/pgdata``) become world-traversable. Files stay protected by their own
modes (the JWT secret is ``0600``; the data directory is ``0700``).

Server settings are PostgreSQL's defaults, on purpose. ``fsync`` and
``synchronous_commit`` stay on: a turn's record is durable once committed
(checkpoint writes opt out per connection instead, see
:mod:`voco.store.postgres`). ``wal_sync_method`` stays ``fdatasync`` (Linux's
default): on the machines measured, ``pg_test_fsync`` and durable-commit A/B
runs alternating the methods on one server (ALTER SYSTEM + reload) showed no
method consistently faster — ``open_datasync`` won single 8 kB writes in one
run and lost the two-write case in every run, and a turn's commit usually
flushes several pages (the checkpoint WAL written asynchronously before it),
which is the case it loses. A deployment whose disk favours another method can
set it with ``ALTER SYSTEM`` on the embedded server; nothing here resets it.

Every ``pgserver`` call blocks (subprocesses, file locks), so callers run
these functions in a worker thread.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from voco.common.processes import pid_alive

with warnings.catch_warnings():
    # pgserver asks platformdirs for a runtime dir it does not use for our data
    # dir; without XDG_RUNTIME_DIR (servers, CI) that only prints a warning.
    warnings.simplefilter("ignore")
    from pgserver.postgres_server import PostgresServer, get_server

log = logging.getLogger("voco.store")

# pgserver logs every subprocess it runs (with full stdout) at INFO; failures
# are logged at ERROR with the server log attached, so nothing useful is lost.
logging.getLogger("pgserver").setLevel(logging.WARNING)

_HANDLES_FILE = ".handle_pids.json"  # pgserver's per-data-dir list of using processes

# pgserver's lock is an fcntl file lock, which is per *process*: two threads of
# one process would both hold it. Starts and stops run in worker threads, so
# they are serialised here too.
_thread_lock = threading.Lock()


@dataclass
class EmbeddedPostgres:
    """One process's handle on the embedded server for ``pgdata``.

    pgserver reference-counts users per process (``__enter__``/``__exit__``)
    and per data directory across processes (a PID list in the data dir): the
    server stops when the last handle of the last process is released, so two
    stores on the same directory in one process, or two engine processes,
    never stop the server under each other.
    """

    pgdata: Path
    url: str
    start_s: float
    _server: Any
    _released: bool = False

    def stop(self) -> None:
        """Release this handle (once); stops the server if it was the last one."""
        with _thread_lock:
            if self._released:
                return
            self._released = True
            self._server.__exit__(None, None, None)
            if self._server._count > 0:
                return
            # pgserver keeps its instance cached when another process still
            # uses the server, but has already dropped this process from the
            # handle list; a later start in this process would reuse the
            # cached instance without re-registering, and the other process
            # could then stop the server under it. Forgetting the instance
            # makes the next start register afresh.
            with PostgresServer._lock:
                if PostgresServer._instances.get(self.pgdata) is self._server:
                    del PostgresServer._instances[self.pgdata]


def start_embedded(pgdata: Path) -> EmbeddedPostgres:
    """Start (or attach to) the embedded server for ``pgdata``; blocking."""
    pgdata = pgdata.expanduser().resolve()
    pgdata.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    t0 = time.perf_counter()
    with _thread_lock:
        with PostgresServer._lock:
            _prune_dead_handles(pgdata)
        # Any: pgserver's context-manager methods are untyped
        server: Any = get_server(pgdata, cleanup_mode="stop")
        server.__enter__()
    start_s = time.perf_counter() - t0
    url = str(server.get_uri())
    log.info("embedded postgres ready in %.2f s (data %s)", start_s, pgdata)
    return EmbeddedPostgres(pgdata=pgdata, url=url, start_s=start_s, _server=server)


def _prune_dead_handles(pgdata: Path) -> None:
    """Forget processes that died without releasing the server.

    A killed engine leaves the server running (good: the next start attaches
    to it in ~0.1 s and nothing is lost) but also leaves its PID in pgserver's
    handle list, and pgserver only stops the server when the *last* listed
    process lets go — so after one crash the server would never be stopped
    again. Dropping PIDs that no longer exist restores that. Best effort: the
    file is pgserver's internal format, so anything unexpected is left alone.
    """
    path = pgdata / _HANDLES_FILE
    try:
        pids = json.loads(path.read_text())
    except (OSError, ValueError):
        return
    if not isinstance(pids, list) or not all(isinstance(p, int) for p in pids):
        return
    alive = [p for p in pids if pid_alive(p)]
    if alive != pids:
        log.info("embedded postgres: dropping handles of dead processes %s", set(pids) - set(alive))
        path.write_text(json.dumps(alive))
