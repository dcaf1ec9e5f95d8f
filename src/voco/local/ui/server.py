"""``voco local``: serves the built web UI and the browser WebSocket on 127.0.0.1."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, PlainTextResponse, Response
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket

from voco.local.mcp_bridge import McpBridge
from voco.local.ui.approvals import UiApprovals
from voco.local.ui.relay import BrowserRelay, RuntimeConfig
from voco.local.ui.security import Gate

log = logging.getLogger("voco.local")

NOT_BUILT = """<!doctype html><meta charset="utf-8"><title>Voco</title>
<p>The Voco web UI is not built. Run <code>scripts/setup.sh</code> (it runs
<code>npm ci &amp;&amp; npm run build</code> in <code>web/</code>).</p>"""


def web_dist() -> Path:
    env = os.environ.get("VOCO_WEB_DIST")
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[4] / "web" / "dist"


class LocalRuntime:
    """State shared by every page: one sandbox bridge (one audit log), approvals."""

    def __init__(self, config: RuntimeConfig, roots: list[Path], approve: str, gate: Gate):
        self.config = config
        self.gate = gate
        self.roots = roots
        self.approve = approve
        self.pages: set[BrowserRelay] = set()
        self.approvals: UiApprovals | None = None
        self.bridge: McpBridge | None = None

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        if self.approve == "ask":
            self.approvals = UiApprovals(loop, self.broadcast, self.roots)
            self.bridge = McpBridge(
                self.roots, "ask", approver=self.approvals, observer=self.broadcast
            )
        else:
            self.bridge = McpBridge(self.roots, self.approve, observer=self.broadcast)

    async def stop(self) -> None:
        if self.bridge is not None:
            await self.bridge.aclose()

    async def broadcast(self, msg: dict[str, Any]) -> None:
        for page in list(self.pages):
            with contextlib.suppress(Exception):
                await page.send_json(msg)


def create_ui_app(runtime: LocalRuntime, dist: Path | None = None) -> Starlette:
    dist = dist or web_dist()
    gate = runtime.gate

    def headers() -> dict[str, str]:
        return {
            "Content-Security-Policy": gate.csp(),
            "X-Frame-Options": "DENY",
            "X-Content-Type-Options": "nosniff",
            "Referrer-Policy": "no-referrer",
            "Cache-Control": "no-store",
        }

    async def shell(request: Request) -> Response:
        if problem := gate.check_host(request.headers.get("host")):
            return PlainTextResponse(problem, status_code=403)
        index = dist / "index.html"
        if not index.is_file():
            return HTMLResponse(NOT_BUILT, status_code=503, headers=headers())
        return FileResponse(index, headers=headers())

    async def asset(request: Request) -> Response:
        if problem := gate.check_host(request.headers.get("host")):
            return PlainTextResponse(problem, status_code=403)
        name = request.path_params["path"]
        base = (dist / "assets").resolve()
        target = (base / name).resolve()
        if base not in target.parents or not target.is_file():
            return PlainTextResponse("not found", status_code=404)
        return FileResponse(target, headers=headers())

    async def health(request: Request) -> Response:
        if problem := gate.check_host(request.headers.get("host")) or gate.check_secret(
            request.query_params.get("secret")
        ):
            return PlainTextResponse(problem, status_code=403)
        return PlainTextResponse("ok")

    async def ui_socket(ws: WebSocket) -> None:
        problem = gate.check_websocket(
            ws.headers.get("host"), ws.headers.get("origin"), ws.query_params.get("secret")
        )
        if problem:
            log.warning("refused UI connection: %s", problem)
            await ws.close(code=4403, reason=problem[:100])  # before accept: HTTP 403
            return
        await ws.accept()
        assert runtime.bridge is not None
        thread = ws.query_params.get("thread") or None
        page = BrowserRelay(ws, runtime.config, runtime.bridge, runtime.approvals, thread)
        runtime.pages.add(page)
        try:
            await page.run()
        finally:
            runtime.pages.discard(page)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await runtime.start()
        try:
            yield
        finally:
            await runtime.stop()

    return Starlette(
        routes=[
            Route("/", shell),
            Route("/index.html", shell),
            Route("/assets/{path:path}", asset),
            Route("/healthz", health),
            WebSocketRoute("/ui", ui_socket),
        ],
        lifespan=lifespan,
    )
