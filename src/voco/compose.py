"""The composition root: where providers, store, engine and local runtime meet.

Every lower package is written against interfaces and takes what it needs as
arguments; only this module (and the command line, which parses flags and
calls it) imports the engine and the local runtime together. ``voco up`` and
``voco demo`` wire here; ``voco serve`` builds its providers here. The layer
order it sits on top of is spelled out, and enforced, in tests/test_layers.py.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from voco.engine.runtime import EngineConfig, EngineRuntime, build_providers
from voco.engine.server import create_app, uvicorn_options
from voco.local.launch import (
    LOCAL_USER,
    UP_TOKEN_TTL_S,
    Launched,
    announce_forever,
    require_web_ui,
    run_until_interrupted,
    serve_ui,
)
from voco.serving import serving

__all__ = ["build_providers", "run_up", "running_engine", "up"]


@contextlib.asynccontextmanager
async def running_engine(runtime: EngineRuntime, port: int = 0) -> AsyncIterator[str]:
    """Serve ``runtime`` on 127.0.0.1 for the duration of the block; yields the URL."""
    async with serving(create_app(runtime), port, **uvicorn_options()) as bound:
        yield f"ws://127.0.0.1:{bound}/v1/session"


@contextlib.asynccontextmanager
async def up(
    roots: list[Path],
    approve: str,
    *,
    port: int = 0,
    engine_port: int = 0,
    config: EngineConfig | None = None,
    providers: dict[str, Any] | None = None,
) -> AsyncIterator[Launched]:
    """Engine + local runtime + web UI in one process (``config``: providers by
    name, database; ``providers``: already-built ones, as ``voco serve`` passes)."""
    runtime = await EngineRuntime.create(config, **(providers or {}))
    try:
        async with running_engine(runtime, engine_port) as engine_url:

            def token() -> str:
                return runtime.auth.issue(LOCAL_USER, ttl_s=UP_TOKEN_TTL_S)

            async with serve_ui(engine_url, token, roots, approve, port=port) as launched:
                yield launched
    finally:
        await runtime.aclose()


def run_up(
    roots: list[Path],
    approve: str,
    port: int,
    engine_port: int,
    config: EngineConfig | None = None,
    providers: dict[str, Any] | None = None,
) -> int:
    async def main() -> None:
        require_web_ui()
        print("voco: loading the models…", file=sys.stderr, flush=True)
        async with up(
            roots,
            approve,
            port=port,
            engine_port=engine_port,
            config=config,
            providers=providers,
        ) as launched:
            await announce_forever(launched)

    return run_until_interrupted(main)
