"""Scale-out as a team deploys it, on 127.0.0.1: HAProxy (deploy/haproxy.cfg) in
front of three ``voco serve`` engines on one Postgres, ``voco worker`` beside.

A. One engine is SIGKILLed while its clients have a typed turn in flight (the
   engine is waiting for the client's ``mcp.response``): those clients
   reconnect through HAProxy to another engine, resume their threads, re-send
   the in-flight turn and get it answered; every turn that got ``agent.done``
   is in its thread.
B. One engine is drained (SIGTERM) while its clients have a turn in flight:
   the turns finish on the draining engine, the clients move on after 1012,
   and nothing is re-sent or lost.

The in-flight turn is made deterministic, not timed: the test's client holds
the engine's ``mcp.request`` of that turn (as a slow tool would) until the
engine is gone (A) or has stopped accepting (B). Command-mode LLM, text turns.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import urllib.parse
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
import pytest

from tests.deploy.topology import Topology, issue_token, topology_env
from tests.store.pgtools import server_dir
from voco.local.engine_client import EngineClient, Received
from voco.local.mcp_bridge import McpBridge
from voco.local.reconnect import ReconnectPolicy
from voco.local.resuming import ResumingSession
from voco.protocol import messages as m
from voco.store.embedded import start_embedded

pytestmark = [
    pytest.mark.timeout(600),
    pytest.mark.skipif(
        shutil.which("haproxy") is None, reason="haproxy missing (scripts/setup.sh)"
    ),
]
TURNS = ["list the files", "list the files in src", "open the readme"]
CLIENTS = 4
WAIT_S = 180.0  # generous bound on any one wait (a loaded machine), never asserted


def database_url(server_url: str) -> str:
    """A fresh database on the embedded server, as a postgresql:// URL for ``--database``."""
    name = f"t_{uuid.uuid4().hex[:16]}"
    with psycopg.connect(server_url, autocommit=True) as admin:
        admin.execute(f"create database {name}")
    parts = urllib.parse.urlsplit(server_url)
    return urllib.parse.urlunsplit(parts._replace(path=f"/{name}"))


@pytest.fixture(scope="module")
def topology(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Topology]:
    home = tmp_path_factory.mktemp("deploy")
    with server_dir() as d:
        pg = start_embedded(d / "pgdata")
        topo = Topology(topology_env(home), database_url(pg.url), home)
        try:
            topo.start()
            yield topo
        finally:
            topo.stop()
            pg.stop()


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = tmp_path / "proj"
    (root / "src").mkdir(parents=True)
    (root / "README.md").write_text("# Demo project\n\nScale-out test.\n")
    (root / "src" / "main.py").write_text("print('hello')\n")
    return root


@dataclass
class Client:
    """One person's conversation: a resuming session always being read (as a
    real client does, so keepalive pings are answered between turns), its
    sandbox, and a switch that holds the engine's tool requests of one
    connection unanswered."""

    sess: ResumingSession
    bridge: McpBridge
    hold_on: EngineClient | None = None  # hold requests arriving on this connection
    held: list[tuple[m.McpRequest, EngineClient]] = field(default_factory=list)
    in_flight: asyncio.Event = field(default_factory=asyncio.Event)
    moved: asyncio.Event = field(default_factory=asyncio.Event)  # resumed on a new connection
    replies: list[str] = field(default_factory=list)
    from_thread: int = 0  # replies read from the stored thread (agent.done was lost)
    inbox: asyncio.Queue[Received] = field(default_factory=asyncio.Queue)
    reader: asyncio.Task[None] | None = None

    @property
    def backend(self) -> str:
        assert self.sess.client is not None and self.sess.client.ws.response is not None
        return str(self.sess.client.ws.response.headers["x-voco-backend"])

    def hold(self) -> None:
        self.hold_on, self.in_flight = self.sess.client, asyncio.Event()

    def release(self) -> None:
        self.hold_on = None
        for request, conn in self.held:
            self.bridge.submit(request, conn)
        self.held.clear()

    async def read(self) -> None:
        """Answer tool requests and playback as they come; queue the rest."""
        seen = self.sess.reconnects
        while True:
            item = await self.sess.recv()
            if self.sess.reconnects != seen:
                seen = self.sess.reconnects
                self.moved.set()
            msg = item.message
            if isinstance(msg, m.McpRequest):
                conn = self.sess.client
                assert conn is not None
                if self.hold_on is not None and conn is self.hold_on:
                    self.held.append((msg, conn))
                    self.in_flight.set()
                else:
                    self.bridge.submit(msg, conn)
            elif isinstance(msg, m.AudioEnd):
                await self.sess.send(
                    m.AudioPlayed(response_id=msg.response_id, played_ms=msg.duration_ms)
                )
            elif item.audio is None:
                self.inbox.put_nowait(item)

    async def turn(self, text: str) -> str:
        await self.sess.send_text(text)
        mine: str | None = None
        while True:
            item = await self.inbox.get()
            if item.resolved is not None:
                assert item.resolved.outcome == "answered", item.resolved
                reply = item.resolved.reply
                self.from_thread += 1
                break
            msg = item.message
            if isinstance(msg, m.TranscriptFinal) and msg.text == text:
                mine = msg.turn_id
            elif isinstance(msg, m.AgentDone) and msg.turn_id == mine and not msg.interrupted:
                reply = msg.text
                break
        self.replies.append(reply)
        return reply


@contextlib.asynccontextmanager
async def clients(topo: Topology, project: Path, n: int) -> AsyncIterator[list[Client]]:
    token = await asyncio.to_thread(issue_token, topo.env, "alice")
    made: list[Client] = []

    def start(thread_id: str | None) -> m.SessionStart:
        return m.SessionStart(
            token=token,
            thread_id=thread_id,
            audio=m.AudioConfig(output=m.AudioOutput(encoding="pcm_s16le")),
        )

    try:
        for _ in range(n):
            bridge = McpBridge([project], "deny", audit_path=topo.home / f"audit-{uuid.uuid4()}")
            sess = ResumingSession(
                topo.url,
                start,
                policy=ReconnectPolicy(give_up_after_s=WAIT_S),
                on_lost=bridge.cancel_pending,
            )
            await asyncio.wait_for(sess.open(), WAIT_S)
            c = Client(sess, bridge)
            c.reader = asyncio.create_task(c.read())
            made.append(c)
        yield made
    finally:
        for c in made:
            if c.reader is not None:
                c.reader.cancel()
                with contextlib.suppress(BaseException):
                    await c.reader
            await c.bridge.aclose()
            with contextlib.suppress(Exception):
                await c.sess.close()


async def stored_turns(topo: Topology, token: str, thread_id: str) -> list[m.HistoryTurn]:
    """The thread as the database has it, read through HAProxy on a new session."""
    start = m.SessionStart(token=token, thread_id=thread_id)
    client = await EngineClient.connect(topo.url, start)
    try:
        await client.send(m.ThreadHistoryRequest(limit=100))
        while True:
            item = await asyncio.wait_for(client.recv(), WAIT_S)
            if isinstance(item.message, m.ThreadHistory):
                return item.message.turns
    finally:
        await client.close()


def answered(turns: list[m.HistoryTurn]) -> list[str]:
    """User texts of the turns that finished (a user message whose engine died
    before it answered is stored alone, with no reply)."""
    return [t.user_text for t in turns if t.reply_text]


async def everyone(cs: list[Client], text: str) -> None:
    await asyncio.wait_for(asyncio.gather(*(c.turn(text) for c in cs)), WAIT_S)


async def test_killed_engine_clients_resume_elsewhere_with_no_lost_turn(
    topology: Topology, project: Path
) -> None:
    await asyncio.to_thread(topology.ensure_all_up)
    assert topology.worker_alive(), "voco worker runs beside the engines"
    async with clients(topology, project, CLIENTS) as cs:
        await everyone(cs, TURNS[0])
        victim = cs[0].backend
        on_victim = [c for c in cs if c.backend == victim]
        others = [c for c in cs if c.backend != victim]
        for c in on_victim:
            c.hold()
        turn2 = {id(c): asyncio.create_task(c.turn(TURNS[1])) for c in cs}
        for c in on_victim:  # their turn is in flight: the engine waits for the tool
            await asyncio.wait_for(c.in_flight.wait(), WAIT_S)
        for c in others:
            await asyncio.wait_for(turn2[id(c)], WAIT_S)
        await asyncio.to_thread(topology.kill, victim)  # SIGKILL: no drain, no goodbye
        for c in on_victim:
            await asyncio.wait_for(turn2[id(c)], WAIT_S)
            assert c.sess.reconnects >= 1 and c.sess.resent == 1
            assert c.backend != victim
        await everyone(cs, TURNS[2])
        token = await asyncio.to_thread(issue_token, topology.env, "alice")
        for c in cs:
            assert all(c.replies), c.replies
            assert c.sess.thread_id is not None
            turns = await stored_turns(topology, token, c.sess.thread_id)
            assert answered(turns) == TURNS, [(t.user_text, t.reply_text) for t in turns]
        assert all(c.sess.resent == 0 and c.sess.reconnects == 0 for c in others)


async def test_drained_engine_loses_no_turn(topology: Topology, project: Path) -> None:
    await asyncio.to_thread(topology.ensure_all_up)
    async with clients(topology, project, CLIENTS) as cs:
        await everyone(cs, TURNS[0])
        target = cs[0].backend
        on_target = [c for c in cs if c.backend == target]
        for c in on_target:
            c.hold()
        turn2 = [asyncio.create_task(c.turn(TURNS[1])) for c in cs]
        for c in on_target:
            await asyncio.wait_for(c.in_flight.wait(), WAIT_S)
        await asyncio.to_thread(topology.terminate, target)
        await asyncio.to_thread(topology.wait_stopped_accepting, target, WAIT_S)
        for c in on_target:  # the tool answers now: the draining engine finishes the turn
            c.release()
        await asyncio.wait_for(asyncio.gather(*turn2), WAIT_S)
        # then 1012: the clients resume on another engine before their next turn
        for c in on_target:
            await asyncio.wait_for(c.moved.wait(), WAIT_S)
        await everyone(cs, TURNS[2])
        await asyncio.to_thread(topology.wait_exit, target)  # exits by itself (SIGTERM status)
        log = topology.logs(topology.engine(target))
        token = await asyncio.to_thread(issue_token, topology.env, "alice")
        for c in cs:
            assert c.sess.resent == 0, "a drained engine finishes its turns: nothing re-sent"
            assert c.from_thread == 0, "...and delivers their agent.done"
            assert c.sess.thread_id is not None
            turns = await stored_turns(topology, token, c.sess.thread_id)
            assert [t.user_text for t in turns] == TURNS, [
                (t.user_text, t.reply_text) for t in turns
            ]
            assert all(t.reply_text for t in turns)
        for c in on_target:
            assert c.sess.reconnects >= 1 and c.backend != target
        assert "shutdown: done" in log, log
        assert "Traceback" not in log, log
