"""The local runtime's UI server over real sockets: the gate, the relay, and
approvals decided from a page — with a real engine and the real sandbox."""

from __future__ import annotations

import asyncio
import json
import shutil
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import websockets

from voco.auth import user_uuid
from voco.local.launch import serve_ui

pytestmark = pytest.mark.timeout(90)


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = tmp_path / "proj"
    root.mkdir()
    (root / "README.md").write_text("# Hello\n")
    (root / "Makefile").write_text("test:\n\t@echo '2 passed, 0 failed'\n")
    return root


def origin(port: int) -> str:
    return f"http://127.0.0.1:{port}"


async def connect(ui, *, secret=None, origin_=None, host=None):
    """``host``: the name the page was loaded under. A DNS-rebinding attack
    resolves a foreign name to 127.0.0.1, so the TCP connection goes here while
    the Host header carries that name."""
    secret = ui.secret if secret is None else secret
    name = host or f"127.0.0.1:{ui.port}"
    return await websockets.connect(
        f"ws://{name}/ui?secret={secret}",
        origin=origin_ or origin(ui.port),
        host="127.0.0.1",
        port=ui.port,
    )


async def next_of(ws, kind: str, timeout: float = 30):
    async def loop():
        while True:
            raw = await ws.recv()
            if isinstance(raw, bytes):
                continue
            msg = json.loads(raw)
            if msg["type"] == kind:
                return msg

    return await asyncio.wait_for(loop(), timeout)


def http_get(url: str, host: str | None = None) -> tuple[int, dict[str, str], bytes]:
    req = urllib.request.Request(url, headers={"Host": host} if host else {})
    try:
        with urllib.request.urlopen(req, timeout=5) as r:
            return r.status, dict(r.headers), r.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read()


@pytest.mark.parametrize(
    "attack",
    ["foreign-origin", "rebinding-host", "null-origin", "foreign-origin-no-secret"],
)
async def test_foreign_pages_are_refused(engine_factory, project, attack):
    async with engine_factory() as eng, serve_ui(eng.url, eng.token(), [project], "deny") as ui:
        kw = {
            "foreign-origin-no-secret": {"origin_": "http://evil.example", "secret": ""},
            "foreign-origin": {"origin_": "http://evil.example"},
            "rebinding-host": {
                "host": f"evil.example:{ui.port}",
                "origin_": f"http://evil.example:{ui.port}",
            },
            "null-origin": {"origin_": "null"},
        }[attack]
        with pytest.raises(websockets.InvalidStatus) as e:
            await connect(ui, **kw)
        assert e.value.response.status_code == 403


@pytest.mark.parametrize("secret", ["", "stale-secret-from-an-old-launch"])
async def test_our_page_with_a_stale_link_is_told_so_and_sent_nothing(
    engine_factory, project, secret
):
    """Right Origin and Host but a wrong secret (the runtime restarted): the
    page gets close 4401 so it can say the link is stale, and not one frame —
    no roots, no session."""
    async with engine_factory() as eng, serve_ui(eng.url, eng.token(), [project], "ask") as ui:
        ws = await connect(ui, secret=secret)
        with pytest.raises(websockets.ConnectionClosed) as e:
            await asyncio.wait_for(ws.recv(), 10)
        assert e.value.rcvd is not None and e.value.rcvd.code == 4401


async def test_http_gate_and_headers(engine_factory, project, tmp_path, monkeypatch):
    dist = tmp_path / "dist"
    (dist / "assets").mkdir(parents=True)
    (dist / "index.html").write_text("<!doctype html><title>Voco</title>")
    (dist / "assets" / "app.js").write_text("console.log(1)")
    (tmp_path / "secret.txt").write_text("TOP SECRET")
    monkeypatch.setenv("VOCO_WEB_DIST", str(dist))
    async with engine_factory() as eng, serve_ui(eng.url, eng.token(), [project], "deny") as ui:
        base = f"http://127.0.0.1:{ui.port}"
        status, headers, body = await asyncio.to_thread(http_get, base + "/")
        assert status == 200 and b"Voco" in body
        assert "frame-ancestors 'none'" in headers["content-security-policy"]
        assert headers["x-frame-options"] == "DENY"
        status, _, _ = await asyncio.to_thread(http_get, base + "/", f"evil.example:{ui.port}")
        assert status == 403
        status, _, body = await asyncio.to_thread(http_get, base + "/assets/app.js")
        assert status == 200
        for path in ("/assets/../../secret.txt", "/assets/%2e%2e/%2e%2e/secret.txt"):
            status, _, body = await asyncio.to_thread(http_get, base + path)
            assert status == 404 and b"TOP SECRET" not in body
        status, _, _ = await asyncio.to_thread(http_get, base + "/healthz?secret=nope")
        assert status == 403


async def test_relay_turn_activity_and_no_mcp_to_the_page(engine_factory, project):
    async with engine_factory() as eng, serve_ui(eng.url, eng.token(), [project], "deny") as ui:
        ws = await connect(ui)
        status = await next_of(ws, "runtime.status")
        assert status["roots"] == [str(project.resolve())] and status["approve"] == "deny"
        ready = await next_of(ws, "session.ready")
        assert ready["user_id"] == user_uuid("alice")
        await ws.send(json.dumps({"type": "text.input", "text": "open the readme"}))
        seen = []
        while True:
            raw = await asyncio.wait_for(ws.recv(), 30)
            if isinstance(raw, bytes):
                seen.append("audio")
                continue
            msg = json.loads(raw)
            seen.append(msg["type"])
            if msg["type"] == "metrics":
                break
        assert "mcp.request" not in seen
        assert "activity" in seen and "agent.done" in seen and "audio" in seen
        await ws.send(json.dumps({"type": "bogus"}))
        err = await next_of(ws, "error")
        assert err["code"] == "unknown_type" and err["fatal"] is False
        await ws.close()


@pytest.mark.skipif(shutil.which("bwrap") is None, reason="bubblewrap missing")
@pytest.mark.parametrize("approve", [True, False])
async def test_approval_decided_in_the_page(engine_factory, project, approve):
    async with engine_factory() as eng, serve_ui(eng.url, eng.token(), [project], "ask") as ui:
        ws = await connect(ui)
        await next_of(ws, "session.ready")
        await ws.send(json.dumps({"type": "text.input", "text": "run the tests"}))
        req = await next_of(ws, "approval.request")
        assert req["action"] == "execute_command" and "make test" in json.dumps(req["payload"])
        assert req["reason"] and req["roots"] == [str(project.resolve())]
        await ws.send(
            json.dumps({"type": "approval.decision", "id": req["id"], "approve": approve})
        )
        closed = await next_of(ws, "approval.closed")
        assert closed == {"type": "approval.closed", "id": req["id"], "approved": approve}
        while True:
            act = await next_of(ws, "activity")
            if act["stage"] == "done" and act["id"] == req["id"]:
                break
        assert act["status"] == ("success" if approve else "rejected")
        done = await next_of(ws, "agent.done")
        assert ("passed" in done["text"].lower()) is approve
        await ws.close()


@pytest.mark.skipif(shutil.which("bwrap") is None, reason="bubblewrap missing")
async def test_closing_the_page_withdraws_its_pending_approval(engine_factory, project):
    import os

    async with engine_factory() as eng, serve_ui(eng.url, eng.token(), [project], "ask") as ui:
        ws = await connect(ui)
        await next_of(ws, "session.ready")
        await ws.send(json.dumps({"type": "text.input", "text": "run the tests"}))
        req = await next_of(ws, "approval.request")
        await ws.close()
        log = Path(os.environ["VOCO_AUDIT_LOG"])
        for _ in range(100):
            entries = [json.loads(line) for line in log.read_text().splitlines()]
            approvals = [
                e for e in entries if e.get("kind") == "approval" and e["data"]["id"] == req["id"]
            ]
            if approvals:
                break
            await asyncio.sleep(0.05)
        assert approvals and approvals[0]["data"]["approved"] is False


async def test_a_reconnecting_page_resumes_its_thread(engine_factory, project):
    async with engine_factory() as eng, serve_ui(eng.url, eng.token(), [project], "deny") as ui:
        ws = await connect(ui)
        first = await next_of(ws, "session.ready")
        await ws.close()
        ws = await websockets.connect(
            f"ws://127.0.0.1:{ui.port}/ui?secret={ui.secret}&thread={first['thread_id']}",
            origin=origin(ui.port),
        )
        again = await next_of(ws, "session.ready")
        assert again["thread_id"] == first["thread_id"]
        await ws.close()


@pytest.mark.skipif(shutil.which("bwrap") is None, reason="bubblewrap missing")
async def test_a_page_opened_later_sees_the_open_prompt(engine_factory, project):
    async with engine_factory() as eng, serve_ui(eng.url, eng.token(), [project], "ask") as ui:
        first = await connect(ui)
        await next_of(first, "session.ready")
        await first.send(json.dumps({"type": "text.input", "text": "run the tests"}))
        req = await next_of(first, "approval.request")
        second = await connect(ui)
        again = await next_of(second, "approval.request")
        assert again == req
        await second.send(
            json.dumps({"type": "approval.decision", "id": req["id"], "approve": False})
        )
        closed = await next_of(first, "approval.closed")
        assert closed["approved"] is False
        await first.close()
        await second.close()


async def test_the_page_gets_the_thread_history_on_connect_and_reconnect(engine_factory, project):
    async with engine_factory() as eng, serve_ui(eng.url, eng.token(), [project], "deny") as ui:
        ws = await connect(ui)
        first = await next_of(ws, "session.ready")
        empty = await next_of(ws, "thread.history")
        assert empty["turns"] == [] and empty["thread_id"] == first["thread_id"]
        await ws.send(json.dumps({"type": "text.input", "text": "open the readme"}))
        done = None
        while done is None:  # command mode may list the folder first, to find it
            act = await next_of(ws, "activity")
            if act["stage"] == "done" and act.get("action") == "read_file":
                done = act
        # what it did, not just "done": the excerpt read
        assert done["status"] == "success" and done["detail"]["kind"] == "file"
        assert done["detail"]["excerpt"] == "# Hello\n"
        await next_of(ws, "metrics")
        await ws.close()
        # a reload: same thread, and the conversation comes back
        ws = await websockets.connect(
            f"ws://127.0.0.1:{ui.port}/ui?secret={ui.secret}&thread={first['thread_id']}",
            origin=origin(ui.port),
        )
        hist = await next_of(ws, "thread.history")
        (turn,) = hist["turns"]
        assert turn["user_text"] == "open the readme" and turn["reply_text"]
        action = next(a for a in turn["tool_actions"] if a["action"] == "read_file")
        assert action["status"] == "success"
        assert action["detail"]["excerpt"] == "# Hello\n"
        await ws.close()


async def test_approval_mode_is_changed_from_the_page_but_never_to_auto(engine_factory, project):
    async with engine_factory() as eng, serve_ui(eng.url, eng.token(), [project], "deny") as ui:
        ws = await connect(ui)
        status = await next_of(ws, "runtime.status")
        assert status["approve"] == "deny" and status["approve_choices"] == ["ask", "deny"]
        await next_of(ws, "session.ready")
        await ws.send(json.dumps({"type": "settings.update", "approve": "all"}))
        err = await next_of(ws, "error")
        assert err["code"] == "invalid_message" and not err["fatal"]
        await ws.send(json.dumps({"type": "settings.update", "approve": "ask"}))
        while (status := await next_of(ws, "runtime.status"))["approve"] != "ask":
            pass
        if shutil.which("bwrap") is None:
            return
        # now a risky action asks instead of being refused by policy
        await ws.send(json.dumps({"type": "text.input", "text": "run the tests"}))
        req = await next_of(ws, "approval.request")
        await ws.send(json.dumps({"type": "approval.decision", "id": req["id"], "approve": False}))
        await next_of(ws, "approval.closed")
        await ws.send(json.dumps({"type": "settings.update", "approve": "deny"}))
        while (status := await next_of(ws, "runtime.status"))["approve"] != "deny":
            pass
        await ws.close()


async def test_a_typed_turn_while_the_engine_is_away_is_refused_visibly(project):
    async with serve_ui("ws://127.0.0.1:9/v1/session", "t", [project], "deny") as ui:
        ws = await connect(ui)
        # nothing listens: the runtime keeps trying (and says so), the turn is refused
        while (await next_of(ws, "runtime.status"))["engine"] != "reconnecting":
            pass
        await ws.send(json.dumps({"type": "text.input", "text": "hello"}))
        err = await next_of(ws, "error")
        assert err["code"] == "engine_offline" and "not sent" in err["message"]
        await ws.close()


@pytest.mark.skipif(shutil.which("bwrap") is None, reason="bubblewrap missing")
async def test_a_failing_command_is_shown_failed_with_its_output(engine_factory, project):
    (project / "Makefile").write_text("test:\n\t@echo '\\033[31m1 failed\\033[0m' >&2; exit 2\n")
    async with engine_factory() as eng, serve_ui(eng.url, eng.token(), [project], "ask") as ui:
        ws = await connect(ui)
        await next_of(ws, "session.ready")
        await ws.send(json.dumps({"type": "text.input", "text": "run the tests"}))
        req = await next_of(ws, "approval.request")
        await ws.send(json.dumps({"type": "approval.decision", "id": req["id"], "approve": True}))
        while (act := await next_of(ws, "activity"))["stage"] != "done":
            pass
        assert act["status"] == "error" and act["code"] == "exit_status"
        d = act["detail"]
        assert d["kind"] == "command" and d["exit_code"] == 2 and "make test" in d["command"]
        assert "1 failed" in d["stderr"] and "\x1b" not in d["stderr"]
        await ws.close()
