"""Roots that would cover secrets are refused; secret-looking files need a yes (issue 12 #8)."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

from voco.local.sandbox import AuditLog, Sandbox
from voco.local.sandbox.core import validate_roots
from voco.local.sandbox.errors import RootRefused
from voco.protocol.messages import McpRequest

from .helpers import Tree, approve_all, call


@pytest.fixture
def home(tmp_path: Path) -> Path:
    h = tmp_path / "home" / "alice"
    (h / ".ssh").mkdir(parents=True)
    (h / ".ssh" / "id_ed25519").write_text("PRIVATE-KEY\n")
    (h / "code" / "proj").mkdir(parents=True)
    return h


@pytest.mark.parametrize("which", ["home", "parent", "slash"])
def test_home_and_its_ancestors_are_refused(home: Path, which: str) -> None:
    root = {"home": home, "parent": home.parent, "slash": Path("/")}[which]
    with pytest.raises(RootRefused, match=r"home folder|'/'"):
        Sandbox([root], None, home=str(home))


def test_a_project_inside_home_is_fine(home: Path) -> None:
    Sandbox([home / "code" / "proj"], None, home=str(home)).close()


def test_voco_state_folders_are_refused(tmp_path: Path) -> None:
    voco_home = Path(os.environ["VOCO_HOME"])
    with pytest.raises(RootRefused, match="Voco's own state"):
        Sandbox([voco_home.parent], None, home="/nonexistent-home")
    with pytest.raises(RootRefused, match="Voco's own state"):
        Sandbox([voco_home], None, home="/nonexistent-home")
    # The audit log's own folder, wherever it is configured.
    log = AuditLog(tmp_path / "proj2" / "logs" / "audit.jsonl")
    try:
        with pytest.raises(RootRefused, match="Voco's own state"):
            Sandbox([tmp_path / "proj2"], None, home="/nonexistent-home", audit=log)
    finally:
        log.close()


def test_missing_root_is_one_clear_error(tmp_path: Path) -> None:
    with pytest.raises(RootRefused, match="does not exist"):
        validate_roots([tmp_path / "nope"], home=str(tmp_path))
    (tmp_path / "file").write_text("x")
    with pytest.raises(RootRefused, match="not a directory"):
        validate_roots([tmp_path / "file"], home="/nonexistent-home")


# ------------------------------------------------------------------ secret-looking files


@pytest.fixture
def secrets_tree(tree: Tree) -> Tree:
    (tree.root / ".env").write_text("DB_PASSWORD=hunter2-env\n")
    (tree.root / ".env.example").write_text("DB_PASSWORD=changeme\n")
    (tree.root / "server.pem").write_text("PEM hunter2-pem\n")
    (tree.root / "id_rsa").write_text("KEY hunter2-id\n")
    (tree.root / ".npmrc").write_text("//registry/:_authToken=hunter2-npm\n")
    (tree.root / "aws_credentials").write_text("hunter2-aws\n")
    (tree.root / ".ssh").mkdir()
    (tree.root / ".ssh" / "config").write_text("hunter2-ssh\n")
    os.symlink(".env", tree.root / "notes.txt")  # an innocent name for the same file
    return tree


@pytest.mark.parametrize(
    "path",
    [".env", "server.pem", "id_rsa", ".npmrc", "aws_credentials", ".ssh/config", "notes.txt"],
)
def test_reading_a_secret_needs_approval(
    secrets_tree: Tree, make_sandbox: Callable[..., Sandbox], path: str
) -> None:
    resp = call(make_sandbox(None), "read_file", path=path)
    assert resp.status == "rejected" and resp.code == "denied_by_policy", resp
    assert "hunter2" not in resp.to_json()
    asked: list[str] = []

    def approver(_r: McpRequest, why: str) -> bool:
        asked.append(why)
        return True

    ok = call(make_sandbox(approver), "read_file", path=path)
    assert ok.status == "success" and "hunter2" in ok.result["content"]
    assert asked and ("secret" in asked[0] or "credentials" in asked[0])


def test_templates_and_ordinary_files_need_no_approval(
    secrets_tree: Tree, make_sandbox: Callable[..., Sandbox]
) -> None:
    sb = make_sandbox(None)
    assert call(sb, "read_file", path=".env.example").status == "success"
    assert call(sb, "read_file", path="inside.txt").status == "success"


def test_search_of_a_folder_skips_secrets(
    secrets_tree: Tree, make_sandbox: Callable[..., Sandbox]
) -> None:
    resp = call(make_sandbox(None), "search_text", pattern="hunter2")
    assert resp.status == "success", resp
    assert "hunter2" not in resp.to_json() and resp.result["matches"] == []
    assert resp.result["skipped_secret_files"] >= 5
    named = call(make_sandbox(None), "search_text", pattern="hunter2", path=".env")
    assert named.code == "denied_by_policy"


def test_listing_a_credentials_folder_needs_approval(
    secrets_tree: Tree, make_sandbox: Callable[..., Sandbox]
) -> None:
    assert call(make_sandbox(None), "list_dir", path=".ssh").code == "denied_by_policy"
    listing = call(make_sandbox(approve_all), "list_dir", path=".ssh")
    assert [e["name"] for e in listing.result["entries"]] == ["config"]
    assert call(make_sandbox(None), "list_dir", path=".").status == "success"
    (secrets_tree.root / "credentials-service").mkdir()  # a project folder, not a secret
    assert call(make_sandbox(None), "list_dir", path="credentials-service").status == "success"
