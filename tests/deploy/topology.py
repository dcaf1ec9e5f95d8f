"""The deployed topology on 127.0.0.1: HAProxy (deploy/haproxy.cfg) in front of
three ``voco serve`` processes on one Postgres, plus ``voco worker``.

Real processes, real ports; nothing here is a double. Every wait is on an
event (a port answering, a process exiting) with a generous bound, never a
timing assertion.
"""

from __future__ import annotations

import csv
import io
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
HAPROXY_CFG = REPO / "deploy" / "haproxy.cfg"
VOCO = [sys.executable, "-m", "voco.cli"]
ENGINES = 3  # deploy/haproxy.cfg names e1..e3
START_BOUND_S = 240.0  # three engines loading models on a small, shared machine


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def healthy(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as r:
            return bool(r.status == 200)
    except OSError:
        return False


@dataclass
class Engine:
    name: str  # the HAProxy server name (X-Voco-Backend)
    port: int
    log: Path
    proc: subprocess.Popen[bytes] | None = None

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None


@dataclass
class Topology:
    env: dict[str, str]
    database: str
    home: Path
    lb_port: int = field(default_factory=free_port)
    engines: list[Engine] = field(default_factory=list)
    haproxy: subprocess.Popen[bytes] | None = None
    worker: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.lb_port}/v1/session"

    def engine(self, name: str) -> Engine:
        return next(e for e in self.engines if e.name == name)

    # ---------------------------------------------------------------- start

    def start(self) -> None:
        for i in range(1, ENGINES + 1):
            port = free_port()
            self.engines.append(Engine(f"e{i}", port, self.home / f"engine-e{i}.log"))
        for e in self.engines:
            self._spawn(e)
        with open(self.home / "worker.log", "wb") as out:  # the child keeps its copy
            self.worker = subprocess.Popen(
                [*VOCO, "worker", "--database", self.database],
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        lb_env = {
            **self.env,
            "LB_BIND": f"127.0.0.1:{self.lb_port}",
            **{f"ENGINE_{i + 1}": f"127.0.0.1:{e.port}" for i, e in enumerate(self.engines)},
        }
        haproxy = shutil.which("haproxy")
        assert haproxy is not None
        # the deploy config unchanged, plus a runtime-API socket so the test can
        # wait for HAProxy's own view of its servers (a second -f merges globals)
        extra = self.home / "haproxy-stats.cfg"
        extra.write_text(f'global\n    stats socket "{self.stats_socket}" mode 600 level user\n')
        with open(self.home / "haproxy.log", "wb") as out:
            self.haproxy = subprocess.Popen(
                [haproxy, "-db", "-f", str(HAPROXY_CFG), "-f", str(extra)],
                env=lb_env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        self.wait_up()

    def _spawn(self, e: Engine) -> None:
        # one process per engine: the test kills "an engine", and three fit two cores
        args = ["serve", "--port", str(e.port), "--database", self.database, "--workers", "1"]
        args += ["--llm", "command", "--stt", "whisper:tiny", "--tts", "piper"]
        with open(e.log, "ab") as out:
            e.proc = subprocess.Popen(
                [*VOCO, *args, "--shutdown-timeout", "40"],
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )

    @property
    def stats_socket(self) -> Path:
        return self.home / "haproxy.sock"

    def server_states(self) -> dict[str, str]:
        """HAProxy's status of each engine ("UP", "DOWN", "UP 1/2", ...), from
        ``show stat`` on its runtime API; empty while HAProxy is not listening."""
        try:
            with socket.socket(socket.AF_UNIX) as s:
                s.settimeout(2)
                s.connect(str(self.stats_socket))
                s.sendall(b"show stat\n")
                raw = b"".join(iter(lambda: s.recv(65536), b""))
        except OSError:
            return {}
        rows = list(csv.reader(io.StringIO(raw.decode().lstrip("# "))))
        if not rows:
            return {}
        col = {name: i for i, name in enumerate(rows[0])}
        return {
            r[col["svname"]]: r[col["status"]]
            for r in rows[1:]
            if len(r) > col["status"]
            and r[col["pxname"]] == "engines"
            and r[col["svname"]] not in ("BACKEND", "FRONTEND")
        }

    def wait_up(self) -> None:
        """Every engine answers its health check and HAProxy itself has marked
        every one UP (its checks need ``rise`` passes after a start or a restart:
        until then it answers 503 for a server it still thinks down)."""
        deadline = time.monotonic() + START_BOUND_S
        for e in self.engines:
            while not healthy(e.port):
                if not e.alive() or time.monotonic() > deadline:
                    raise RuntimeError(f"engine {e.name} did not start:\n{self.logs(e)}")
                time.sleep(0.3)
        names = {e.name for e in self.engines}
        while True:
            states = self.server_states()
            if all(states.get(n) == "UP" for n in names):
                return
            assert self.haproxy is not None
            if self.haproxy.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(
                    f"haproxy did not mark every engine up ({states}):\n{self.haproxy_log()}"
                )
            time.sleep(0.2)

    def ensure_all_up(self) -> None:
        """Restart any engine an earlier test killed or drained (same port: HAProxy
        marks it up again on its own health check)."""
        for e in self.engines:
            if not e.alive():
                if e.proc is not None:
                    e.proc.wait()
                self._spawn(e)
        self.wait_up()

    # ----------------------------------------------------------------- stop

    def kill(self, name: str) -> None:
        e = self.engine(name)
        assert e.proc is not None
        e.proc.kill()
        e.proc.wait()

    def terminate(self, name: str) -> None:
        e = self.engine(name)
        assert e.proc is not None
        e.proc.send_signal(signal.SIGTERM)

    def wait_stopped_accepting(self, name: str, bound_s: float) -> None:
        """The draining engine no longer answers its health check (it took SIGTERM)."""
        e, deadline = self.engine(name), time.monotonic() + bound_s
        while healthy(e.port):
            if time.monotonic() > deadline:
                raise RuntimeError(f"engine {name} still accepting after SIGTERM")
            time.sleep(0.2)

    def wait_exit(self, name: str, timeout: float = 120.0) -> int:
        e = self.engine(name)
        assert e.proc is not None
        return e.proc.wait(timeout=timeout)

    def stop(self) -> None:
        for p in [self.haproxy, self.worker, *(e.proc for e in self.engines)]:
            if p is not None and p.poll() is None:
                p.kill()
                p.wait()

    # ----------------------------------------------------------------- logs

    def logs(self, e: Engine) -> str:
        return e.log.read_text(errors="replace")[-4000:] if e.log.exists() else ""

    def haproxy_log(self) -> str:
        path = self.home / "haproxy.log"
        return path.read_text(errors="replace")[-4000:] if path.exists() else ""

    def worker_alive(self) -> bool:
        return self.worker is not None and self.worker.poll() is None


def topology_env(home: Path) -> dict[str, str]:
    return {
        **os.environ,
        "VOCO_HOME": str(home),  # one embedded issuer key for every engine and `voco token`
        "ANTHROPIC_API_KEY": "",
        "STRIPE_SECRET_KEY": "",
        "VOCO_AUDIT_LOG": str(home / "audit.jsonl"),
    }


def issue_token(env: dict[str, str], user: str) -> str:
    out = subprocess.run(
        [*VOCO, "token", "--user", user, "--ttl", "7200"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return out.stdout.strip()
