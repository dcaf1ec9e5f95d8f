"""``voco serve --workers N``: N engine processes behind one listening socket.

Why a supervisor passing one socket rather than ``SO_REUSEPORT``: the socket
stays open in the supervisor while a worker restarts, so no connection is
refused or reset meanwhile; and every worker accepts from the same queue, so a
busy worker (its event loop late to accept) naturally leaves new connections
to an idle one, where ``SO_REUSEPORT`` hashes them to a worker whatever its
load. Each worker is a full engine (its own models, batched VAD, inference
queues and admission); limits per user or organisation live in Postgres
leases, which is why ``--database memory`` cannot run more than one worker.

The supervisor forwards SIGTERM/SIGINT to the workers as SIGTERM (each drains,
see :class:`~voco.engine.shutdown.EngineServer`), restarts a worker that dies,
and gives up when a worker keeps dying before it ever became ready.
"""

from __future__ import annotations

import logging
import multiprocessing
import multiprocessing.connection
import os
import shutil
import signal
import socket
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from types import FrameType
from typing import Any

from voco.engine.metrics import MULTIPROC_ENV, worker_exited

log = logging.getLogger("voco.workers")

# (listening socket, worker index, ready event) → runs one engine until SIGTERM
WorkerTarget = Callable[[socket.socket, int, Any], None]

MAX_EARLY_DEATHS = 3  # consecutive deaths before ready: the start-up is broken


def machine_cores() -> int:
    """Cores this process may run on (the affinity mask, not the machine's total)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


def die_with_parent() -> None:
    """In a worker: be killed when the supervisor dies, however it dies.

    A SIGKILLed supervisor runs no cleanup, and its workers would keep serving
    the shared port as orphans that nothing drains or restarts — a balancer
    would keep sending them sessions. Linux's ``PR_SET_PDEATHSIG`` ends them
    with it; elsewhere this is a no-op (the supervisor's own signal handling
    still stops them on SIGTERM).
    """
    if not sys.platform.startswith("linux"):
        return
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    pr_set_pdeathsig = 1
    libc.prctl(pr_set_pdeathsig, signal.SIGKILL, 0, 0, 0)
    parent = multiprocessing.parent_process()
    if parent is not None and os.getppid() != parent.pid:  # it died before the call
        os._exit(1)


def listen(host: str, port: int, backlog: int = 2048) -> socket.socket:
    """The one listening socket every worker accepts from."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.create_server((host, port), family=family, backlog=backlog)
    sock.set_inheritable(True)
    return sock


@dataclass
class _Worker:
    index: int
    process: Any  # multiprocessing.Process (spawn context)
    ready: Any  # multiprocessing.Event
    started_at: float
    early_deaths: int = 0


class Supervisor:
    def __init__(
        self,
        target: WorkerTarget,
        sock: socket.socket,
        workers: int,
        *,
        stop_timeout_s: float,
        restart_backoff_s: float = 1.0,
    ) -> None:
        self._target = target
        self._sock = sock
        self._n = workers
        self._stop_timeout_s = stop_timeout_s
        self._backoff_s = restart_backoff_s
        self._ctx = multiprocessing.get_context("spawn")
        self._workers: dict[int, _Worker] = {}
        self._stopping = False
        self._metrics_dir: str | None = None

    # ---------------------------------------------------------------- lifecycle

    def run(self, on_ready: Callable[[], None] | None = None) -> int:
        """Start the workers and supervise until a signal; 0 on a clean stop."""
        self._metrics_dir = tempfile.mkdtemp(prefix="voco-metrics-")
        os.environ[MULTIPROC_ENV] = self._metrics_dir  # inherited by every worker
        previous = {
            sig: signal.signal(sig, self._on_signal) for sig in (signal.SIGTERM, signal.SIGINT)
        }
        try:
            for i in range(self._n):
                self._spawn(i)
            announced = False
            status = 0
            while not self._stopping:
                if not announced and all(w.ready.is_set() for w in self._workers.values()):
                    announced = True
                    if on_ready is not None:
                        on_ready()
                if not self._reap():
                    status = 1
                    break
            self._stop_all()
            return status
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            os.environ.pop(MULTIPROC_ENV, None)
            shutil.rmtree(self._metrics_dir, ignore_errors=True)

    def pids(self) -> list[int]:
        return [w.process.pid for w in self._workers.values() if w.process.pid is not None]

    def _spawn(self, index: int, early_deaths: int = 0) -> None:
        ready = self._ctx.Event()
        proc = self._ctx.Process(
            target=self._target,
            args=(self._sock, index, ready),
            name=f"voco-worker-{index}",
        )
        proc.start()
        self._workers[index] = _Worker(index, proc, ready, time.monotonic(), early_deaths)
        log.info("worker %d started (pid %s)", index, proc.pid)

    def _reap(self) -> bool:
        """Wait a little for a worker to die; restart it. ``False``: give up."""
        sentinels = {w.process.sentinel: w for w in self._workers.values()}
        for s in multiprocessing.connection.wait(list(sentinels), timeout=0.5):
            w = sentinels[s]
            w.process.join()
            if self._stopping:
                continue
            worker_exited(w.process.pid)
            early = 0 if w.ready.is_set() else w.early_deaths + 1
            log.error(
                "worker %d (pid %s) died with exit code %s; restarting it",
                w.index,
                w.process.pid,
                w.process.exitcode,
            )
            if early >= MAX_EARLY_DEATHS:
                log.error("worker %d died %d times before it was ready; giving up", w.index, early)
                return False
            time.sleep(self._backoff_s * (2**early if early else 1))
            if not self._stopping:
                self._spawn(w.index, early)
        return True

    def _on_signal(self, sig: int, frame: FrameType | None) -> None:
        if not self._stopping:
            log.warning("voco serve: %s, draining %d worker(s)", signal.strsignal(sig), self._n)
        self._stopping = True

    def _stop_all(self) -> None:
        """SIGTERM every worker (each drains, bounded by its --shutdown-timeout),
        then kill what outlives the bound."""
        for w in self._workers.values():
            if w.process.is_alive():
                os.kill(w.process.pid, signal.SIGTERM)
        deadline = time.monotonic() + self._stop_timeout_s
        for w in self._workers.values():
            w.process.join(max(0.0, deadline - time.monotonic()))
            if w.process.is_alive():
                log.error("worker %d did not stop in time; killing it", w.index)
                w.process.kill()
                w.process.join()
