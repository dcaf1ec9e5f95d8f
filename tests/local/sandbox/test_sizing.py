"""Every mcp.response fits one 1 MiB text frame, measured serialised (issue 12 #13)."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest

from voco.local.sandbox import Sandbox
from voco.local.sandbox.sizing import FRAME_LIMIT, fit_response, json_cost
from voco.protocol.connection import MAX_TEXT_FRAME
from voco.protocol.messages import McpResponse

from .helpers import Tree, approve_all, call, needs_bwrap


def _fits(resp: McpResponse) -> bool:
    return len(resp.to_json().encode()) <= MAX_TEXT_FRAME


def test_json_cost_matches_the_serialiser() -> None:
    raw = bytes(range(128)) * 50 + "héllo ✓".encode()
    text = raw.decode()
    assert json_cost(raw) == len(json.dumps(text, ensure_ascii=False).encode()) - 2
    resp = McpResponse(id="x", status="success", result={"content": text})
    assert json_cost(raw) == len(resp.to_json().encode()) - len(
        McpResponse(id="x", status="success", result={"content": ""}).to_json().encode()
    )


def test_read_of_control_characters_fits(tree: Tree, make_sandbox: Callable[..., Sandbox]) -> None:
    (tree.root / "ctl.txt").write_bytes(b"\x01" * (1 << 20))  # 6 MiB once escaped
    resp = call(make_sandbox(), "read_file", path="ctl.txt")
    assert resp.status == "success" and _fits(resp)
    assert resp.result["truncated"] is True
    got = len(resp.result["content"].encode())
    nxt = call(make_sandbox(), "read_file", path="ctl.txt", offset=got)  # continue where it ended
    assert nxt.result["content"] and _fits(nxt)


def test_read_of_binary_fits(tree: Tree, make_sandbox: Callable[..., Sandbox]) -> None:
    (tree.root / "bin").write_bytes(b"\xff\xfe" * (1 << 19))  # 1 MiB, base64 = 1.33 MiB
    resp = call(make_sandbox(), "read_file", path="bin")
    assert "content_b64" in resp.result and resp.result["truncated"] and _fits(resp)


def test_read_keeps_a_multibyte_character_whole(
    tree: Tree, make_sandbox: Callable[..., Sandbox]
) -> None:
    (tree.root / "u.txt").write_text("✓" * 400_000)  # 1.2 MB of 3-byte characters
    resp = call(make_sandbox(), "read_file", path="u.txt")
    assert set(resp.result["content"]) == {"✓"} and _fits(resp)


@needs_bwrap
@pytest.mark.timeout(60)
def test_two_full_output_streams_fit(tree: Tree, make_sandbox: Callable[..., Sandbox]) -> None:
    (tree.root / "ctl.txt").write_bytes(b"\x02" * (1 << 20))
    resp = call(
        make_sandbox(approve_all), "execute_command", command="cat ctl.txt; cat ctl.txt >&2"
    )
    assert resp.status == "success" and _fits(resp), len(resp.to_json())
    assert resp.result["truncated"] is True and resp.result["exit_code"] == 0
    assert "[voco: output truncated" in resp.result["stdout"]


def test_search_with_escaped_lines_fits(tree: Tree, make_sandbox: Callable[..., Sandbox]) -> None:
    line = "NEEDLE" + "\x03" * 390 + "\n"
    for i in range(10):
        (tree.root / f"f{i}.txt").write_text(line * 60)
    resp = call(make_sandbox(), "search_text", pattern="NEEDLE")
    assert resp.status == "success" and _fits(resp)
    assert resp.result["truncated"] is True and resp.result["matches"]


def test_listing_of_long_escaped_names_fits(
    tree: Tree, make_sandbox: Callable[..., Sandbox]
) -> None:
    d = tree.root / "many"
    d.mkdir()
    for i in range(5000):
        (d / (f"{i:05d}" + "\x04" * 200)).touch()
    resp = call(make_sandbox(), "list_dir", path="many")
    assert resp.status == "success" and _fits(resp)
    assert resp.result["truncated"] is True and resp.result["entries"]


def test_fit_response_last_resort_is_too_large() -> None:
    huge = McpResponse(id="x", status="success", result={"blob": "y" * (2 << 20)})
    out = fit_response(huge)
    assert out.status == "error" and out.code == "too_large"
    small = McpResponse(id="x", status="success", result={"stdout": "ok"})
    assert fit_response(small) is small
    assert FRAME_LIMIT < MAX_TEXT_FRAME
