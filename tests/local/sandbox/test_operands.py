"""Operand checks on fds (Medium 5), without running anything: these hold without bwrap."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from voco.local.sandbox import operands
from voco.local.sandbox.operands import operand_reasons, secret_looking
from voco.local.sandbox.paths import Resolver
from voco.local.sandbox.risk import classify_command

from .helpers import Tree

pytestmark = pytest.mark.timeout(20)


def reasons(root: Path, command: str, mode: str = "openat2", cwd: str = ".") -> list[str]:
    r = Resolver([root], force_fallback=(mode == "walk"))
    try:
        return operand_reasons(r, classify_command(command), r.locate(cwd))
    finally:
        r.close()


@pytest.mark.parametrize(
    "command",
    ["cat hl", "cat ./hl", "cat h?", "cat [h]l", "cat *", "cat sub/../hl", "grep -r x .", "rg x"],
)
def test_hard_link_is_found_however_it_is_named(command: str, tree: Tree, mode: str) -> None:
    os.link(tree.secret, tree.root / "hl")
    got = reasons(tree.root, command, mode)
    assert any("'hl' is hard-linked" in r or "hl' is hard-linked" in r for r in got), got


def test_plain_operands_give_no_reason(tree: Tree, mode: str) -> None:
    assert reasons(tree.root, "cat inside.txt sub/*.txt missing*", mode) == []
    assert reasons(tree.root, "grep -r NESTED .", mode) == []


def test_hidden_files_match_only_dot_globs(tree: Tree) -> None:
    (tree.root / ".env").write_text("K=v\n")
    assert reasons(tree.root, "cat *") == []
    assert any("looks like a secret" in r for r in reasons(tree.root, "cat .*"))
    assert any("looks like a secret" in r for r in reasons(tree.root, "cat .e*"))


def test_nested_glob_components_expand(tree: Tree) -> None:
    (tree.root / "sub" / "deeper").mkdir()
    os.link(tree.secret, tree.root / "sub" / "deeper" / "x.txt")
    got = reasons(tree.root, "cat */*/x.txt")
    assert any("hard-linked" in r for r in got), got


def test_walk_is_bounded(tree: Tree, monkeypatch: pytest.MonkeyPatch) -> None:
    for i in range(12):
        (tree.root / f"f{i}").write_text("x")
    monkeypatch.setattr(operands, "WALK_ENTRIES_CAP", 5)
    got = reasons(tree.root, "grep -r x .")
    assert got == ["more than 5 files to check before running"]


def test_walk_depth_is_bounded(tree: Tree, monkeypatch: pytest.MonkeyPatch) -> None:
    d = tree.root
    for _ in range(6):
        d = d / "d"
    d.mkdir(parents=True)
    monkeypatch.setattr(operands, "WALK_DEPTH_CAP", 3)
    assert any("nested too deeply" in r for r in reasons(tree.root, "grep -r x d"))


def test_non_recursive_directory_operand_is_not_walked(tree: Tree) -> None:
    os.link(tree.secret, tree.root / "sub" / "hl")
    assert reasons(tree.root, "ls sub") == []
    assert reasons(tree.root, "grep x sub") == []
    assert any("hard-linked" in r for r in reasons(tree.root, "grep -rn x sub"))
    assert any("hard-linked" in r for r in reasons(tree.root, "diff -r sub inside.txt"))


_SECRETS = [".env", ".env.production", "prod.env", "key.pem", "tls.key", "id_rsa"]
_SECRETS += ["id_ed25519.pub", "credentials", "credentials.json", "aws_credentials"]
_SECRETS += [".netrc", ".npmrc", "secrets.yaml"]


@pytest.mark.parametrize("name", _SECRETS)
def test_secret_looking_names(name: str) -> None:
    assert secret_looking(name)


@pytest.mark.parametrize("name", ["README.md", "environment.py", "keys.py", "identity.txt", "env"])
def test_ordinary_names_are_not_secret(name: str) -> None:
    assert not secret_looking(name)


def test_git_config_found_from_subdirectory_and_gitfile(tree: Tree) -> None:
    (tree.root / ".git").mkdir()
    (tree.root / ".git" / "HEAD").write_text("ref: refs/heads/main\n")
    (tree.root / ".git" / "config").write_text("[diff]\n\texternal = sh\n")
    assert any("diff.external" in r for r in reasons(tree.root, "git diff", cwd="sub"))
    (tree.root / "wt").mkdir()
    (tree.root / "wt" / ".git").write_text("gitdir: ../elsewhere/.gitdir\n")
    (tree.root / "elsewhere" / ".gitdir").mkdir(parents=True)
    (tree.root / "elsewhere" / ".gitdir" / "config").write_text("[alias]\n\tx = !sh\n")
    got = reasons(tree.root, "git -C wt log")
    assert any("alias.x" in r for r in got), got
    got = reasons(tree.root, "git --git-dir=elsewhere/.gitdir log")
    assert any("alias.x" in r for r in got), got


def test_innocent_name_linking_to_a_secret_is_found(tree: Tree) -> None:
    (tree.root / ".env").write_text("K=v\n")
    (tree.root / "notes.txt").symlink_to(".env")
    got = reasons(tree.root, "cat notes.txt")
    assert any("resolves to '.env'" in r for r in got), got


def test_device_nodes_inside_a_root_are_flagged(tree: Tree) -> None:
    if os.geteuid() != 0:
        pytest.skip("SKIPPED: creating a device node needs root")
    os.mknod(tree.root / "null2", 0o600 | 0o020000, os.makedev(1, 3))
    assert any("device file" in r for r in reasons(tree.root, "cat null2"))


def test_directories_with_secret_like_names_are_only_walked(tree: Tree) -> None:
    (tree.root / "secrets").mkdir()
    (tree.root / "secrets" / "README.md").write_text("how we store them\n")
    assert reasons(tree.root, "ls secrets") == []
    assert reasons(tree.root, "grep -r x secrets", cwd=".") == []
    (tree.root / "secrets" / "prod.pem").write_text("-----BEGIN\n")
    assert any("prod.pem" in r for r in reasons(tree.root, "grep -r x secrets"))
