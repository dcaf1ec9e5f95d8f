"""``voco local`` and ``voco up``: start the runtime's UI server (and the engine).

Both print the one link that carries the per-launch secret; nothing else on the
machine can use the runtime without it.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

from voco.local.ui.relay import RuntimeConfig
from voco.local.ui.security import Gate, new_secret
from voco.local.ui.server import LocalRuntime, create_ui_app
from voco.serving import free_port, serving


@dataclass(frozen=True)
class Launched:
    url: str  # the page, with its secret
    port: int
    secret: str
    engine_url: str


@contextlib.asynccontextmanager
async def serve_ui(
    engine_url: str,
    token: str,
    roots: list[Path],
    approve: str,
    *,
    port: int = 0,
    project_id: str = "default",
) -> AsyncIterator[Launched]:
    """Run the local runtime's UI server on 127.0.0.1 for the duration of the block."""
    port = port or free_port()
    secret = new_secret()
    gate = Gate(port, secret)
    runtime = LocalRuntime(
        RuntimeConfig(engine_url, token, project_id), [r.resolve() for r in roots], approve, gate
    )
    async with serving(create_ui_app(runtime), port):
        yield Launched(f"http://127.0.0.1:{port}/?secret={secret}", port, secret, engine_url)


@contextlib.asynccontextmanager
async def up(
    roots: list[Path], approve: str, *, port: int = 0, engine_port: int = 0
) -> AsyncIterator[Launched]:
    """Engine (embedded providers) + local runtime + web UI in one process."""
    from voco.demo import running_engine
    from voco.engine.runtime import EngineRuntime

    runtime = await EngineRuntime.create()
    try:
        async with running_engine(runtime, engine_port) as engine_url:
            token = runtime.auth.issue("local-user", ttl_s=30 * 24 * 3600)
            async with serve_ui(engine_url, token, roots, approve, port=port) as launched:
                yield launched
    finally:
        await runtime.aclose()


async def _forever(launched: Launched) -> None:
    print(
        f"Voco is running. Open this link in your browser:\n\n    {launched.url}\n",
        file=sys.stderr,
        flush=True,
    )
    print(launched.url, flush=True)
    await asyncio.Event().wait()


def run_local(engine_url: str, token: str, roots: list[Path], approve: str, port: int) -> int:
    async def main() -> None:
        async with serve_ui(engine_url, token, roots, approve, port=port) as launched:
            await _forever(launched)

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(main())
    return 0


def run_up(roots: list[Path], approve: str, port: int, engine_port: int) -> int:
    async def main() -> None:
        print("voco: loading the embedded models…", file=sys.stderr, flush=True)
        async with up(roots, approve, port=port, engine_port=engine_port) as launched:
            await _forever(launched)

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(main())
    return 0
