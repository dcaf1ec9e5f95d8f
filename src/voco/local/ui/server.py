"""``voco local``: serves the built web UI and the browser WebSocket on 127.0.0.1."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import AsyncIterator
from pathlib import Path

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, PlainTextResponse, Response
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket

from voco.local.mcp_bridge import Approver, McpBridge, make_approver
from voco.local.ui.approvals import UiApprovals
from voco.local.ui.relay import BrowserRelay, RuntimeConfig
from voco.local.ui.security import Gate
from voco.protocol import messages as m
from voco.protocol import ui_messages as ui

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
    """State shared by every page: one sandbox bridge (one audit log), approvals,
    and the approval mode, which a page may change (``settings.update``)."""

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
        self.approvals = UiApprovals(loop, self.broadcast, self.roots)
        self.bridge = McpBridge(
            self.roots, self.approve, approver=self._approver(self.approve), observer=self.broadcast
        )

    def _approver(self, mode: str) -> Approver | None:
        if mode == "ask":
            return self.approvals
        return make_approver(mode)  # deny -> None (refused by policy), all -> yes

    def approve_choices(self) -> list[ui.ApproveMode]:
        """What a page may switch to: ask or deny, never auto-approve."""
        return ["ask", "deny"]

    async def set_approve(self, mode: ui.PageApproveMode) -> None:
        """A page chose how risky actions are decided; every page is told."""
        if mode not in self.approve_choices():  # the model already refuses "all"
            raise ValueError(f"approval mode {mode!r} cannot be chosen from the page")
        assert self.bridge is not None
        self.approve = mode
        self.bridge.set_approve_mode(mode, self._approver(mode))
        log.info("approval mode set to %s from the page", mode)
        for page in list(self.pages):
            with contextlib.suppress(Exception):
                await page.status(page.engine_state, page.engine_message)

    async def stop(self) -> None:
        if self.bridge is not None:
            await self.bridge.aclose()

    async def broadcast(self, msg: m._Msg) -> None:
        for page in list(self.pages):
            with contextlib.suppress(Exception):
                await page.send(msg)


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
        problem = gate.check_page(ws.headers.get("host"), ws.headers.get("origin"))
        if problem:  # another site's page, or DNS rebinding: refused before the upgrade
            log.warning("refused UI connection: %s", problem)
            await ws.close(code=4403, reason=problem[:100])  # before accept: HTTP 403
            return
        if problem := gate.check_secret(ws.query_params.get("secret")):
            # Our own page with an old link (the runtime restarted): accept only
            # to say so with a close code it can tell apart; nothing else is sent.
            log.warning("refused UI connection: %s", problem)
            await ws.accept()
            await ws.close(code=ui.CLOSE_BAD_SECRET, reason="invalid or stale link secret")
            return
        await ws.accept()
        assert runtime.bridge is not None
        thread = ws.query_params.get("thread") or None
        page = BrowserRelay(ws, runtime.config, runtime.bridge, runtime.approvals, thread, runtime)
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
