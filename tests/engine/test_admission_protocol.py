"""Admission over real WebSockets: a small configured capacity is filled, the
next ``session.start`` is refused with 4503 ``at_capacity`` and a retry-after,
and a new session is admitted once one leaves. ``/metrics`` counts both."""

from __future__ import annotations

import asyncio
import contextlib
import urllib.error
import urllib.request
from collections.abc import AsyncIterator
from typing import Any

import pytest

from voco.engine.admission import AdmissionConfig
from voco.engine.server import create_app, uvicorn_options
from voco.local.engine_client import EngineClient, SessionRefused
from voco.protocol import messages as m
from voco.serving import serving

pytestmark = pytest.mark.timeout(120)


@contextlib.asynccontextmanager
async def engine(silero: Any, whisper: Any, piper: Any, **cfg: Any) -> AsyncIterator[tuple]:
    from langgraph.checkpoint.memory import InMemorySaver

    from voco.agent.command_mode import CommandModeLLM
    from voco.agent.graph import build_graph
    from voco.audio.turns import TurnConfig
    from voco.audio.vad import BatchedVAD
    from voco.auth.tokens import TokenAuthority
    from voco.engine.runtime import EngineRuntime
    from voco.store.tenancy import MemoryTenantStore

    rt = EngineRuntime(
        vad=BatchedVAD(silero),
        stt=whisper,
        tts=piper,
        llm=CommandModeLLM(),
        graph=build_graph(InMemorySaver()),
        auth=TokenAuthority(),
        tenants=MemoryTenantStore(),
        turn_config=TurnConfig(),
    )
    app = create_app(rt, admission=AdmissionConfig(**cfg))
    try:
        async with serving(app, **uvicorn_options()) as port:
            yield port, rt, app
    finally:
        rt.vad.close()


def http(port: int, path: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


async def start(port: int, token: str) -> EngineClient:
    return await EngineClient.connect(
        f"ws://127.0.0.1:{port}/v1/session", m.SessionStart(token=token)
    )


async def test_full_engine_refuses_4503_then_admits_after_a_session_leaves(
    silero: Any, whisper: Any, piper: Any
) -> None:
    async with engine(silero, whisper, piper, max_sessions=2) as (port, rt, app):
        a = await start(port, rt.auth.issue("alice"))
        b = await start(port, rt.auth.issue("bob"))
        assert (await asyncio.to_thread(http, port, "/health/ready"))[0] == 503

        with pytest.raises(SessionRefused) as refused:
            await start(port, rt.auth.issue("carol"))
        assert refused.value.code == 4503
        err = refused.value.error
        assert err is not None and err.code == "at_capacity" and err.fatal
        assert err.retry_after_ms == 5000
        assert "capacity" in err.message

        await a.send(m.SessionEnd())
        await a.close()
        # the slot is given back when the engine's handler ends: wait for readiness
        while (await asyncio.to_thread(http, port, "/health/ready"))[0] != 200:  # noqa: ASYNC110
            await asyncio.sleep(0.05)
        c = await start(port, rt.auth.issue("carol"))
        assert c.ready.user_id

        status, body = await asyncio.to_thread(http, port, "/metrics")
        assert status == 200
        assert 'voco_admissions_refused_total{reason="max_sessions"} 1.0' in body
        assert "voco_admissions_total 3.0" in body
        assert "voco_sessions 2.0" in body
        await b.close()
        await c.close()


async def test_a_refused_start_does_not_hold_a_slot(silero: Any, whisper: Any, piper: Any) -> None:
    """A start refused later (a bad token) gives its reserved slot back."""
    async with engine(silero, whisper, piper, max_sessions=1) as (port, rt, app):
        with pytest.raises(SessionRefused) as refused:
            await start(port, "not-a-token")
        assert refused.value.code == 4401
        while app.state.admission.sessions:  # noqa: ASYNC110 (the server's handler ends)
            await asyncio.sleep(0.05)
        c = await start(port, rt.auth.issue("alice"))
        await c.close()
