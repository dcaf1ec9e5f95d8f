"""``voco local``: start the runtime's UI server (``voco up`` adds the engine to
it in :mod:`voco.compose`, the layer that may import both).

Both print the one link that carries the per-launch secret; nothing else on the
machine can use the runtime without it.

Tokens: ``voco up`` holds the embedded auth's secret, so instead of one
30-day token it issues a short-lived one (``UP_TOKEN_TTL_S``) at every engine
(re)connect; ``voco local`` does the same when it runs on the embedded auth,
and otherwise re-reads ``--token-file`` at each connect so another process
can rotate it. A leaked token is worth an hour, not a month.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
from collections.abc import AsyncIterator, Callable, Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from voco.local.ui.relay import RuntimeConfig
from voco.local.ui.security import Gate, new_secret
from voco.local.ui.server import LocalRuntime, create_ui_app, web_dist
from voco.serving import ServeError, free_port, serving

UP_TOKEN_TTL_S = 3600
LOCAL_USER = "local-user"


class LaunchError(Exception):
    """The runtime cannot start; the message says what to do."""


@dataclass(frozen=True)
class Launched:
    url: str  # the page, with its secret
    port: int
    secret: str
    engine_url: str


def require_web_ui(dist: Path | None = None) -> Path:
    """The built page, or a LaunchError that says how to build it."""
    dist = dist or web_dist()
    if not (dist / "index.html").is_file():
        raise LaunchError(
            f"the web UI is not built ({dist} is missing); build it with "
            "`cd web && npm ci && npm run build` (scripts/setup.sh does this)"
        )
    return dist


@contextlib.asynccontextmanager
async def serve_ui(
    engine_url: str,
    token: str | Callable[[], str],
    roots: list[Path],
    approve: str,
    *,
    port: int = 0,
    project_id: str = "default",
    secret: str | None = None,
    encoding: str = "mp3",
) -> AsyncIterator[Launched]:
    """Run the local runtime's UI server on 127.0.0.1 for the duration of the block.

    ``token`` is a fixed token or a function called at every engine connect.
    ``secret`` is the launch link's secret, new each launch unless given (a test
    that restarts on the same port keeps its link); ``encoding`` is the reply
    audio the runtime asks the engine for."""
    port = port or free_port()
    secret = secret or new_secret()
    gate = Gate(port, secret)
    if callable(token):
        config = RuntimeConfig(engine_url, token(), project_id, encoding, token_source=token)
    else:
        config = RuntimeConfig(engine_url, token, project_id, encoding)
    runtime = LocalRuntime(config, [r.resolve() for r in roots], approve, gate)
    async with serving(create_ui_app(runtime), port):
        yield Launched(f"http://127.0.0.1:{port}/?secret={secret}", port, secret, engine_url)


def embedded_token_source(ttl_s: int = UP_TOKEN_TTL_S) -> Callable[[], str]:
    """Short-lived tokens from this machine's embedded auth, one per connect."""
    from voco.auth.tokens import TokenAuthority

    authority = TokenAuthority()
    return lambda: authority.issue(LOCAL_USER, ttl_s=ttl_s)


async def announce_forever(launched: Launched) -> None:
    print(
        f"Voco is running. Open this link in your browser:\n\n    {launched.url}\n",
        file=sys.stderr,
        flush=True,
    )
    print(launched.url, flush=True)
    await asyncio.Event().wait()


def run_until_interrupted(main: Callable[[], Coroutine[Any, Any, None]]) -> int:
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        return 0
    except (LaunchError, ServeError) as exc:
        print(f"voco: {exc}", file=sys.stderr)
        return 1
    return 0


def run_local(
    engine_url: str,
    token: str | Callable[[], str],
    roots: list[Path],
    approve: str,
    port: int,
) -> int:
    async def main() -> None:
        require_web_ui()
        async with serve_ui(engine_url, token, roots, approve, port=port) as launched:
            await announce_forever(launched)

    return run_until_interrupted(main)
