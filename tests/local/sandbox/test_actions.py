"""The non-exec actions: result shapes, payload validation, writes and search."""

from __future__ import annotations

import base64
import os
from collections.abc import Callable
from typing import Any

import pytest

from voco.local.sandbox import Sandbox
from voco.protocol.messages import McpRequest

from .helpers import Tree, approve_all, call, refuse_all

pytestmark = pytest.mark.timeout(10)


def test_read_file_shape(tree: Tree, make_sandbox: Callable[..., Sandbox]) -> None:
    resp = call(make_sandbox(), "read_file", path="inside.txt")
    assert resp.status == "success"
    assert resp.result == {"content": "INSIDE\n", "size": 7, "truncated": False}


def test_read_file_offset_length(tree: Tree, make_sandbox: Callable[..., Sandbox]) -> None:
    resp = call(make_sandbox(), "read_file", path="inside.txt", offset=2, length=3)
    assert resp.result == {"content": "SID", "size": 7, "truncated": True}
    resp = call(make_sandbox(), "read_file", path="inside.txt", offset=100)
    assert resp.result == {"content": "", "size": 7, "truncated": False}


def test_read_file_binary(tree: Tree, make_sandbox: Callable[..., Sandbox]) -> None:
    (tree.root / "b.bin").write_bytes(b"\xff\xfe\x00bin")
    resp = call(make_sandbox(), "read_file", path="b.bin")
    assert "content" not in resp.result
    assert base64.b64decode(resp.result["content_b64"]) == b"\xff\xfe\x00bin"


def test_read_file_large_truncated(tree: Tree, make_sandbox: Callable[..., Sandbox]) -> None:
    (tree.root / "big.txt").write_bytes(b"a" * ((1 << 20) + 10))
    resp = call(make_sandbox(), "read_file", path="big.txt", length=10 << 20)
    # As much as fits in one 1 MiB text frame with its envelope (sizing.py).
    assert resp.result["truncated"] is True
    assert (1 << 20) - (16 << 10) <= len(resp.result["content"]) < 1 << 20
    assert len(resp.to_json().encode()) <= 1 << 20


@pytest.mark.parametrize(
    ("action", "payload"),
    [
        ("read_file", {}),
        ("read_file", {"path": 5}),
        ("read_file", {"path": ""}),
        ("read_file", {"path": "inside.txt", "offset": -1}),
        ("read_file", {"path": "inside.txt", "offset": True}),
        ("read_file", {"path": "inside.txt", "length": "10"}),
        ("read_file", {"path": ["inside.txt"]}),
        ("list_dir", {"path": 1}),
        ("search_text", {}),
        ("search_text", {"pattern": ""}),
        ("search_text", {"pattern": "x" * 2000}),
        ("write_file", {"path": "a.txt"}),
        ("write_file", {"path": "a.txt", "content": 1}),
        ("write_file", {"path": "sub/", "content": "x"}),
        ("write_file", {"path": "sub/..", "content": "x"}),
        ("execute_command", {}),
        ("execute_command", {"command": ""}),
        ("execute_command", {"command": "ls", "argv": ["ls"]}),
        ("execute_command", {"argv": []}),
        ("execute_command", {"argv": "ls"}),
        ("execute_command", {"argv": ["ls", 1]}),
        ("execute_command", {"argv": ["ls\x00"]}),
        ("execute_command", {"command": "ls\x00; rm -rf x"}),
        ("execute_command", {"command": "ls", "timeout_s": 0}),
        ("execute_command", {"command": "ls", "timeout_s": "5"}),
        ("execute_command", {"command": "ls", "cwd": 3}),
    ],
)
def test_bad_payload_is_invalid_request(
    action: str, payload: dict[str, Any], tree: Tree, make_sandbox: Callable[..., Sandbox]
) -> None:
    resp = make_sandbox(approve_all).handle(McpRequest(id="x", action=action, payload=payload))
    assert resp.status == "error" and resp.code == "invalid_request", resp
    assert not (tree.root / "a.txt").exists()


def test_unknown_action(make_sandbox: Callable[..., Sandbox]) -> None:
    resp = call(make_sandbox(), "delete_everything", path=".")
    assert resp.status == "error" and resp.code == "unknown_action"


def test_handle_never_raises_on_approver_crash(
    tree: Tree, make_sandbox: Callable[..., Sandbox]
) -> None:
    def boom(_r: McpRequest, _w: str) -> bool:
        raise RuntimeError("ui died")

    resp = call(make_sandbox(boom), "write_file", path="a.txt", content="x")
    assert resp.status == "rejected" and resp.code == "denied_by_policy"
    assert not (tree.root / "a.txt").exists()


def test_approver_must_return_true_exactly(
    tree: Tree, make_sandbox: Callable[..., Sandbox]
) -> None:
    resp = call(make_sandbox(lambda _r, _w: "yes"), "write_file", path="a.txt", content="x")
    assert resp.status == "rejected" and not (tree.root / "a.txt").exists()


# ------------------------------------------------------------------ list_dir


def test_list_dir_entries(tree: Tree, make_sandbox: Callable[..., Sandbox], mode: str) -> None:
    (tree.root / "lnk").symlink_to("../outside")
    os.mkfifo(tree.root / "fifo")
    resp = call(make_sandbox(mode=mode), "list_dir", path=".")
    assert resp.status == "success"
    assert resp.result["entries"] == [
        {"name": "fifo", "kind": "other", "size": 0},
        {"name": "inside.txt", "kind": "file", "size": 7},
        {"name": "lnk", "kind": "symlink", "size": 0},
        {"name": "sub", "kind": "dir", "size": 0},
    ]


def test_list_dir_of_file_is_invalid(make_sandbox: Callable[..., Sandbox]) -> None:
    resp = call(make_sandbox(), "list_dir", path="inside.txt")
    assert resp.code == "invalid_request"


# ------------------------------------------------------------------ search_text


def test_search_finds_inside_and_skips_links_out(
    tree: Tree, make_sandbox: Callable[..., Sandbox], mode: str
) -> None:
    (tree.root / "sub" / "code.py").write_text("x = 1\n# TOP-SECRET here too\n")
    (tree.root / "out-link").symlink_to("../outside")
    (tree.root / "file-link").symlink_to("../outside/secret")
    os.link(tree.secret, tree.root / "hard")
    os.mkfifo(tree.root / "fifo")
    resp = call(make_sandbox(mode=mode), "search_text", pattern="TOP-SECRET")
    assert resp.status == "success"
    assert not tree.leaked(resp)
    assert resp.result["matches"] == [
        {"path": "sub/code.py", "line": 2, "text": "# TOP-SECRET here too"}
    ]


@pytest.mark.parametrize("path", ["..", "../outside", "out-link", "file-link"])
def test_search_start_outside_is_scope_violation(
    path: str, tree: Tree, make_sandbox: Callable[..., Sandbox], mode: str
) -> None:
    (tree.root / "out-link").symlink_to("../outside")
    (tree.root / "file-link").symlink_to("../outside/secret")
    resp = call(make_sandbox(mode=mode), "search_text", pattern="TOP", path=path)
    assert resp.code == "scope_violation" and not tree.leaked(resp)


def test_search_is_literal_not_regex(tree: Tree, make_sandbox: Callable[..., Sandbox]) -> None:
    (tree.root / "r.txt").write_text("a.c\nabc\n(a+)+$\n")
    resp = call(make_sandbox(), "search_text", pattern="(a+)+$")
    assert [m["line"] for m in resp.result["matches"]] == [3]
    resp = call(make_sandbox(), "search_text", pattern="a.c", path="r.txt")
    assert [m["line"] for m in resp.result["matches"]] == [1]


def test_search_caps_matches(tree: Tree, make_sandbox: Callable[..., Sandbox]) -> None:
    (tree.root / "many.txt").write_text("hit\n" * 2000)
    resp = call(make_sandbox(), "search_text", pattern="hit")
    assert len(resp.result["matches"]) == 500 and resp.result["truncated"] is True


# ------------------------------------------------------------------ write_file


def test_write_needs_approval(tree: Tree, make_sandbox: Callable[..., Sandbox]) -> None:
    reasons: list[str] = []

    def spy(_r: McpRequest, why: str) -> bool:
        reasons.append(why)
        return True

    resp = call(make_sandbox(spy), "write_file", path="sub/new.txt", content="héllo")
    assert resp.status == "success" and resp.result == {"bytes_written": 6}
    assert (tree.root / "sub" / "new.txt").read_text() == "héllo"
    assert reasons == ["`write_file` creates 'sub/new.txt' (6 bytes)"]


def test_write_overwrites_and_truncates(tree: Tree, make_sandbox: Callable[..., Sandbox]) -> None:
    resp = call(make_sandbox(approve_all), "write_file", path="inside.txt", content="x")
    assert resp.status == "success" and (tree.root / "inside.txt").read_text() == "x"


@pytest.mark.parametrize(
    ("approver", "code"), [(None, "denied_by_policy"), (refuse_all, "denied_by_user")]
)
def test_write_refused(
    approver: Any, code: str, tree: Tree, make_sandbox: Callable[..., Sandbox]
) -> None:
    resp = call(make_sandbox(approver), "write_file", path="new.txt", content="x")
    assert resp.status == "rejected" and resp.code == code
    assert not (tree.root / "new.txt").exists()


def _setup_write(tree: Tree, kind: str) -> str:
    if kind == "dotdot":
        return "../outside/pwned"
    if kind == "absolute":
        return str(tree.outside / "pwned")
    if kind == "symlink-file":
        (tree.root / "l").symlink_to("../outside/secret")
        return "l"
    if kind == "symlink-dangling":
        (tree.root / "l").symlink_to("../outside/pwned")
        return "l"
    if kind == "symlink-inside":  # even in-root links are not written through
        (tree.root / "l").symlink_to("inside.txt")
        return "l"
    if kind == "symlink-dir":
        (tree.root / "d").symlink_to("../outside")
        return "d/secret"
    if kind == "hardlink":
        os.link(tree.secret, tree.root / "h")
        return "h"
    if kind == "fifo":
        os.mkfifo(tree.root / "f")
        return "f"
    if kind == "prefix-sibling":
        return str(tree.evil / "secret")
    if kind == "proc":
        return f"/proc/self/root{tree.secret}"
    raise AssertionError(kind)


@pytest.mark.parametrize(
    "kind",
    [
        "dotdot",
        "absolute",
        "symlink-file",
        "symlink-dangling",
        "symlink-inside",
        "symlink-dir",
        "hardlink",
        "prefix-sibling",
        "proc",
    ],
)
def test_write_escapes_refused_before_asking(
    kind: str, tree: Tree, make_sandbox: Callable[..., Sandbox], mode: str
) -> None:
    asked: list[str] = []
    path = _setup_write(tree, kind)
    sb = make_sandbox(lambda _r, why: asked.append(why) or True, mode=mode)
    resp = call(sb, "write_file", path=path, content="PWNED")
    assert resp.code == "scope_violation", resp
    assert asked == []
    assert tree.secret.read_text() == tree.secret_text + "\n"
    assert sorted(p.name for p in tree.outside.iterdir()) == ["secret"]
    assert (tree.root / "inside.txt").read_text() == "INSIDE\n"


@pytest.mark.timeout(5)
def test_write_to_fifo_does_not_hang(tree: Tree, make_sandbox: Callable[..., Sandbox]) -> None:
    path = _setup_write(tree, "fifo")
    resp = call(make_sandbox(approve_all), "write_file", path=path, content="x")
    assert resp.status == "error" and resp.code == "invalid_request"


def test_write_too_large(make_sandbox: Callable[..., Sandbox], tree: Tree) -> None:
    resp = call(make_sandbox(approve_all), "write_file", path="big", content="x" * (9 << 20))
    assert resp.code == "too_large" and not (tree.root / "big").exists()


def test_write_missing_parent(make_sandbox: Callable[..., Sandbox]) -> None:
    resp = call(make_sandbox(approve_all), "write_file", path="no/such/dir/f", content="x")
    assert resp.code == "not_found"
