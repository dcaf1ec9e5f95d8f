"""Path escapes, through both resolvers (kernel ``openat2`` and the fallback walk).

Each case builds its hazard in a fresh tree and asserts the protocol's answer
*and* that the outside secret never appears anywhere in the response.
"""

from __future__ import annotations

import os
import stat
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from voco.local.sandbox import Sandbox

from .helpers import Tree, approve_all, call

pytestmark = pytest.mark.timeout(20)

Setup = Callable[[Tree], str]


def _rel_dotdot(t: Tree) -> str:
    return "../outside/secret"


def _deep_dotdot(t: Tree) -> str:
    return "sub/../../outside/secret"


def _many_dotdot(t: Tree) -> str:
    return "../" * 30 + str(t.secret).lstrip("/")


def _absolute(t: Tree) -> str:
    return str(t.secret)


def _abs_dotdot_through_root(t: Tree) -> str:
    return f"{t.root}/../outside/secret"


def _abs_dotdot_back_in(t: Tree) -> str:
    # Climbs out and back in: still refused, RESOLVE_BENEATH never leaves the root.
    return f"{t.root}/../proj/../outside/secret"


def _prefix_sibling_abs(t: Tree) -> str:
    return str(t.evil / "secret")


def _prefix_sibling_rel(t: Tree) -> str:
    return "../proj-evil/secret"


def _symlink_rel(t: Tree) -> str:
    (t.root / "link").symlink_to("../outside/secret")
    return "link"


def _symlink_abs(t: Tree) -> str:
    (t.root / "link").symlink_to(t.secret)
    return "link"


def _symlink_chain(t: Tree) -> str:
    (t.root / "c").symlink_to("../outside/secret")
    (t.root / "sub" / "b").symlink_to("../c")
    (t.root / "a").symlink_to("sub/b")
    return "a"


def _symlink_dir(t: Tree) -> str:
    (t.root / "dirlink").symlink_to("../outside")
    return "dirlink/secret"


def _symlink_dir_abs(t: Tree) -> str:
    (t.root / "dirlink").symlink_to(t.outside)
    return "dirlink/secret"


def _symlink_nested_dotdot(t: Tree) -> str:
    (t.root / "sub" / "up").symlink_to("../..")
    return "sub/up/outside/secret"


def _symlink_loop(t: Tree) -> str:
    (t.root / "x").symlink_to("y")
    (t.root / "y").symlink_to("x")
    return "x"


def _hardlink(t: Tree) -> str:
    os.link(t.secret, t.root / "hard")
    return "hard"


def _proc_self_root_abs(t: Tree) -> str:
    return f"/proc/self/root{t.secret}"


def _proc_self_root_link(t: Tree) -> str:
    (t.root / "pr").symlink_to("/proc/self/root")
    return f"pr{t.secret}"


def _proc_self_cwd_rel(t: Tree) -> str:
    (t.root / "pc").symlink_to("/proc/self/cwd")
    return "pc/secret"


def _proc_fd_magic(t: Tree) -> str:
    (t.root / "fd").symlink_to("/proc/self/fd/0")
    return "fd"


def _nul_byte(t: Tree) -> str:
    return "inside.txt\x00../outside/secret"


def _nul_byte_abs(t: Tree) -> str:
    return f"{t.root}/\x00{t.secret}"


def _dev_symlink(t: Tree) -> str:
    (t.root / "zero").symlink_to("/dev/zero")
    return "zero"


def _dev_absolute(t: Tree) -> str:
    return "/dev/zero"


def _homoglyph_abs(t: Tree) -> str:
    # Cyrillic 'о' in "prоj": a different directory outside the root.
    twin = t.base / "pr\u043ej"
    twin.mkdir()
    (twin / "secret").write_text(t.secret_text)
    return str(twin / "secret")


def _root_itself_dotdot(t: Tree) -> str:
    return ".."


ESCAPES: list[tuple[str, Setup]] = [
    ("dotdot", _rel_dotdot),
    ("deep-dotdot", _deep_dotdot),
    ("many-dotdot", _many_dotdot),
    ("absolute", _absolute),
    ("abs-dotdot-through-root", _abs_dotdot_through_root),
    ("abs-dotdot-back-in", _abs_dotdot_back_in),
    ("prefix-sibling-abs", _prefix_sibling_abs),
    ("prefix-sibling-rel", _prefix_sibling_rel),
    ("symlink-rel", _symlink_rel),
    ("symlink-abs", _symlink_abs),
    ("symlink-chain", _symlink_chain),
    ("symlink-dir", _symlink_dir),
    ("symlink-dir-abs", _symlink_dir_abs),
    ("symlink-nested-dotdot", _symlink_nested_dotdot),
    ("symlink-loop", _symlink_loop),
    ("hardlink", _hardlink),
    ("proc-self-root-abs", _proc_self_root_abs),
    ("proc-self-root-link", _proc_self_root_link),
    ("proc-self-cwd-link", _proc_self_cwd_rel),
    ("proc-fd-magiclink", _proc_fd_magic),
    ("nul-byte", _nul_byte),
    ("nul-byte-abs", _nul_byte_abs),
    ("dev-symlink", _dev_symlink),
    ("dev-absolute", _dev_absolute),
    ("homoglyph-abs", _homoglyph_abs),
]


@pytest.mark.parametrize(("name", "setup"), ESCAPES, ids=[e[0] for e in ESCAPES])
def test_read_file_escape_is_scope_violation(
    name: str, setup: Setup, tree: Tree, make_sandbox: Callable[..., Sandbox], mode: str
) -> None:
    sb = make_sandbox(mode=mode)
    path = setup(tree)
    resp = call(sb, "read_file", path=path)
    assert not tree.leaked(resp)
    assert resp.status == "error", resp
    assert resp.code == "scope_violation", resp


@pytest.mark.parametrize(
    ("name", "setup"),
    [e for e in ESCAPES if e[0] not in ("hardlink", "dev-symlink", "proc-fd-magiclink")],
    ids=[e[0] for e in ESCAPES if e[0] not in ("hardlink", "dev-symlink", "proc-fd-magiclink")],
)
def test_list_dir_escape(
    name: str, setup: Setup, tree: Tree, make_sandbox: Callable[..., Sandbox], mode: str
) -> None:
    sb = make_sandbox(mode=mode)
    path = setup(tree)
    parent = path.rsplit("/", 1)[0] if "/" in path.strip("/") else path
    for candidate in {path, parent}:
        resp = call(sb, "list_dir", path=candidate)
        assert not tree.leaked(resp)
        assert "secret" not in str(resp.result), resp
        assert resp.status == "error"


@pytest.mark.parametrize(
    "path",
    [
        "%2e%2e/outside/secret",  # never URL-decoded
        "..%2foutside%2fsecret",
        "~/secret",  # never tilde-expanded
        "$HOME/secret",  # never variable-expanded
        "\uff0e\uff0e\uff0foutside\uff0fsecret",  # fullwidth "../outside/secret": not normalised
        "..\u2215outside\u2215secret",  # division slash
    ],
)
def test_literal_paths_are_not_decoded(
    path: str, tree: Tree, make_sandbox: Callable[..., Sandbox], mode: str
) -> None:
    sb = make_sandbox(mode=mode)
    resp = call(sb, "read_file", path=path)
    assert not tree.leaked(resp)
    assert resp.code == "not_found", resp


@pytest.mark.parametrize("name", ["~", "$HOME", "%2e%2e"])
def test_literal_odd_names_inside_root_are_just_names(
    name: str, tree: Tree, make_sandbox: Callable[..., Sandbox]
) -> None:
    (tree.root / name).mkdir()
    (tree.root / name / "f").write_text("LITERAL")
    resp = call(make_sandbox(), "read_file", path=f"{name}/f")
    assert resp.status == "success" and resp.result["content"] == "LITERAL"


@pytest.mark.parametrize(
    "path",
    [
        "inside.txt",
        "./inside.txt",
        "sub/../inside.txt",
        "sub/./../inside.txt",
        "ok-link",
        "okdir/../inside.txt",
    ],
)
def test_inside_paths_work(
    path: str, tree: Tree, make_sandbox: Callable[..., Sandbox], mode: str
) -> None:
    (tree.root / "ok-link").symlink_to("sub/../inside.txt")
    (tree.root / "okdir").symlink_to("sub")
    resp = call(make_sandbox(mode=mode), "read_file", path=path)
    assert resp.status == "success", resp
    assert resp.result["content"] == "INSIDE\n"


def test_absolute_inside_root_allowed(
    tree: Tree, make_sandbox: Callable[..., Sandbox], mode: str
) -> None:
    resp = call(make_sandbox(mode=mode), "read_file", path=str(tree.root / "inside.txt"))
    assert resp.status == "success" and resp.result["content"] == "INSIDE\n"


def test_root_given_through_symlink(
    tree: Tree, make_sandbox: Callable[..., Sandbox], mode: str
) -> None:
    alias = tree.base / "alias"
    alias.symlink_to(tree.root)
    sb = make_sandbox(mode=mode, roots=[alias])
    for path in (str(alias / "inside.txt"), str(tree.root / "inside.txt"), "inside.txt"):
        resp = call(sb, "read_file", path=path)
        assert resp.status == "success", (path, resp)
    resp = call(sb, "read_file", path=str(alias) + "/../outside/secret")
    assert resp.code == "scope_violation" and not tree.leaked(resp)


def test_second_root_absolute_paths(tree: Tree, make_sandbox: Callable[..., Sandbox]) -> None:
    other = tree.base / "other"
    other.mkdir()
    (other / "o.txt").write_text("OTHER")
    sb = make_sandbox(roots=[tree.root, other])
    resp = call(sb, "read_file", path=str(other / "o.txt"))
    assert resp.status == "success" and resp.result["content"] == "OTHER"
    resp = call(sb, "read_file", path=str(other) + "/../outside/secret")
    assert resp.code == "scope_violation"


def test_fifo_does_not_hang(tree: Tree, make_sandbox: Callable[..., Sandbox], mode: str) -> None:
    os.mkfifo(tree.root / "fifo")
    resp = call(make_sandbox(mode=mode), "read_file", path="fifo")
    assert resp.status == "error" and resp.code == "invalid_request", resp


def test_device_node_inside_root_refused(tree: Tree, make_sandbox: Callable[..., Sandbox]) -> None:
    try:
        os.mknod(tree.root / "null", stat.S_IFCHR | 0o600, os.makedev(1, 3))
    except OSError as exc:
        pytest.skip(f"cannot create a device node here: {exc}")
    resp = call(make_sandbox(), "read_file", path="null")
    assert resp.code == "scope_violation", resp


def test_huge_sparse_file_is_capped(tree: Tree, make_sandbox: Callable[..., Sandbox]) -> None:
    big = tree.root / "sparse.bin"
    with open(big, "wb") as f:
        f.truncate(10 << 30)  # 10 GiB of holes
    resp = call(make_sandbox(), "read_file", path="sparse.bin")
    assert resp.status == "success"
    assert resp.result["truncated"] is True
    assert resp.result["size"] == 10 << 30
    # NULs are valid UTF-8 but JSON-escape sixfold: as many as fit in one frame.
    content = resp.result["content"]
    assert content and set(content) == {"\x00"} and len(content) < 1 << 20
    assert len(resp.to_json().encode()) <= 1 << 20


def test_directory_is_not_a_file(tree: Tree, make_sandbox: Callable[..., Sandbox]) -> None:
    resp = call(make_sandbox(), "read_file", path="sub")
    assert resp.code == "invalid_request"


def test_missing_file_not_found(
    tree: Tree, make_sandbox: Callable[..., Sandbox], mode: str
) -> None:
    resp = call(make_sandbox(mode=mode), "read_file", path="nope/nothing.txt")
    assert resp.code == "not_found"


# ------------------------------------------------------------------ races


def _flip(link: Path, targets: list[str], stop: threading.Event) -> None:
    tmp = link.with_name(link.name + ".tmp")
    i = 0
    while not stop.is_set():
        if tmp.is_symlink():
            tmp.unlink()
        tmp.symlink_to(targets[i % 2])
        os.replace(tmp, link)  # atomic swap
        i += 1


@pytest.mark.timeout(30)
def test_symlink_swap_race_never_leaks(
    tree: Tree, make_sandbox: Callable[..., Sandbox], mode: str
) -> None:
    link = tree.root / "race"
    link.symlink_to("inside.txt")
    stop = threading.Event()
    flipper = threading.Thread(target=_flip, args=(link, ["inside.txt", "../outside/secret"], stop))
    flipper.start()
    sb = make_sandbox(mode=mode)
    seen: set[str] = set()
    try:
        # Loop until the race was really exercised (both outcomes seen), at most 3000 times.
        for i in range(3000):
            resp = call(sb, "read_file", path="race")
            assert not tree.leaked(resp)
            if resp.status == "success":
                assert resp.result["content"] == "INSIDE\n"
            else:
                assert resp.code in ("scope_violation", "not_found"), resp
            seen.add(resp.status)
            if len(seen) == 2 and i >= 300:
                break
    finally:
        stop.set()
        flipper.join()
    assert seen == {"success", "error"}


@pytest.mark.timeout(30)
def test_parent_dir_swap_race_never_leaks(
    tree: Tree, make_sandbox: Callable[..., Sandbox], mode: str
) -> None:
    (tree.root / "sub" / "secret").write_text("INSIDE\n")
    link = tree.root / "d"
    link.symlink_to("sub")
    stop = threading.Event()
    flipper = threading.Thread(target=_flip, args=(link, ["sub", "../outside"], stop))
    flipper.start()
    sb = make_sandbox(mode=mode)
    try:
        for _ in range(400):
            for action in ("read_file", "list_dir", "search_text"):
                payload = {"path": "d/secret"} if action == "read_file" else {"path": "d"}
                if action == "search_text":
                    payload["pattern"] = "SECRET"
                resp = call(sb, action, **payload)
                assert not tree.leaked(resp), resp
    finally:
        stop.set()
        flipper.join()


@pytest.mark.timeout(30)
def test_write_race_never_writes_outside(
    tree: Tree, make_sandbox: Callable[..., Sandbox], mode: str
) -> None:
    before = tree.secret.read_text()
    link = tree.root / "w"
    link.symlink_to("sub")
    stop = threading.Event()
    flipper = threading.Thread(target=_flip, args=(link, ["sub", "../outside"], stop))
    flipper.start()
    sb = make_sandbox(approve_all, mode=mode)
    try:
        for _ in range(200):
            call(sb, "write_file", path="w/secret", content="PWNED")
    finally:
        stop.set()
        flipper.join()
    assert tree.secret.read_text() == before
    assert sorted(p.name for p in tree.outside.iterdir()) == ["secret"]
