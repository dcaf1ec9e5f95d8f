"""Shared fixtures: the real embedded models (loaded once) and a real engine on
127.0.0.1 with a choice of LLM."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import onnxruntime as ort
import pytest

from voco.audio.turns import TurnConfig
from voco.audio.vad import BatchedVAD, SileroVAD
from voco.engine.event_loop import loop_factory
from voco.providers.base import LLM

# Piper draws its generator noise inside the ONNX graph from onnxruntime's
# global seed, otherwise new in every process: the same text was different
# audio in every run, and a test that passed on most renderings failed on one
# (test_echo's person over the echo, once in a CI-like run). One seed for the
# run: every run hears the same speech, and a failure can be reproduced.
ort.set_seed(20261203)

# the embedded Postgres fixture ``pg`` (one server for the run, started on first use)
pytest_plugins = ["tests.store.pgtools"]


def pytest_asyncio_loop_factories(
    config: pytest.Config, item: pytest.Item
) -> dict[str, Callable[[], asyncio.AbstractEventLoop]]:
    """Async tests run on asyncio's own loop; those marked ``both_loops`` run
    on uvloop as well, the loop ``voco serve`` runs on (engine/event_loop.py):
    its transports are not asyncio's classes, which the engine's socket code
    must not assume (it once asserted ``isinstance(t, asyncio.Transport)``)."""
    loops: dict[str, Callable[[], asyncio.AbstractEventLoop]] = {"asyncio": asyncio.new_event_loop}
    if item.get_closest_marker("both_loops") is not None:
        loops["uvloop"] = loop_factory("uvloop")
    return loops


@pytest.fixture(autouse=True)
def _isolated_state(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch):
    """Secrets and audit logs of a test never touch the developer's ~/.voco."""
    home = tmp_path_factory.mktemp("voco-home")
    monkeypatch.setenv("VOCO_HOME", str(home))
    monkeypatch.setenv("VOCO_AUDIT_LOG", str(home / "audit.jsonl"))


@pytest.fixture(scope="session")
def silero() -> SileroVAD:
    return SileroVAD()


@pytest.fixture(scope="session")
def whisper() -> Any:
    from voco.providers.whisper_stt import WhisperSTT

    stt = WhisperSTT()
    asyncio.run(stt.warmup())
    return stt


@pytest.fixture(scope="session")
def piper() -> Any:
    from voco.providers.piper_tts import PiperTTS

    tts = PiperTTS()
    asyncio.run(tts.warmup())
    return tts


@dataclass
class Engine:
    url: str
    runtime: Any

    def token(self, user: str = "alice", **kw: Any) -> str:
        """A token for ``user`` (a name becomes ``voco.auth.user_uuid(name)`` as ``sub``)."""
        return str(self.runtime.auth.issue(user, **kw))


EngineFactory = Callable[..., contextlib.AbstractAsyncContextManager[Engine]]


@pytest.fixture
def engine_factory(silero: SileroVAD, whisper: Any, piper: Any) -> EngineFactory:
    """``async with engine_factory(llm=...) as engine:`` — a real engine server."""
    from langgraph.checkpoint.memory import InMemorySaver

    from voco.agent.graph import build_graph
    from voco.auth.tokens import TokenAuthority
    from voco.compose import running_engine
    from voco.engine.runtime import EngineRuntime
    from voco.store.tenancy import MemoryTenantStore

    @contextlib.asynccontextmanager
    async def factory(
        llm: LLM | None = None,
        *,
        turn: TurnConfig | None = None,
        checkpointer: Any = None,
        tenants: Any = None,
        stt: Any = None,
        tts: Any = None,
        auth: Any = None,
    ) -> AsyncIterator[Engine]:
        if llm is None:
            from voco.agent.command_mode import CommandModeLLM

            llm = CommandModeLLM()
        rt = EngineRuntime(
            vad=BatchedVAD(silero),
            stt=stt or whisper,
            tts=tts or piper,
            llm=llm,
            graph=build_graph(checkpointer or InMemorySaver()),
            auth=auth or TokenAuthority(),  # the embedded ES256 issuer in the test's VOCO_HOME
            tenants=tenants or MemoryTenantStore(),
            turn_config=turn or TurnConfig(),
        )
        try:
            async with running_engine(rt) as url:
                yield Engine(url, rt)
        finally:
            rt.vad.close()

    return factory
