"""Issue 12 attacks run for real inside bubblewrap: nothing outside policy runs unasked.

Roots are read-only in unapproved runs, so a marker file can't prove much
there; what these tests prove is that the approver was asked (and refused),
so the command never started, and that nothing secret came back.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from voco.local.sandbox import Sandbox
from voco.protocol.messages import McpRequest

from .helpers import Tree, approve_all, call, needs_bwrap

pytestmark = [pytest.mark.timeout(30), needs_bwrap]

_GIT_ENV = {
    "PATH": "/usr/bin:/bin",
    "HOME": "/nonexistent",
    "GIT_CONFIG_GLOBAL": "/dev/null",
    "GIT_CONFIG_NOSYSTEM": "1",
    "GIT_AUTHOR_NAME": "t",
    "GIT_AUTHOR_EMAIL": "t@t",
    "GIT_COMMITTER_NAME": "t",
    "GIT_COMMITTER_EMAIL": "t@t",
}


def git(cwd: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=cwd, env=_GIT_ENV, check=True, capture_output=True)


class Asked:
    def __init__(self) -> None:
        self.reasons: list[str] = []

    def __call__(self, _req: McpRequest, reason: str) -> bool:
        self.reasons.append(reason)
        return False


def refused(sb: Sandbox, command: str, asked: Asked, why: str, tree: Tree) -> None:
    resp = call(sb, "execute_command", command=command)
    assert resp.status == "rejected" and resp.code == "denied_by_user", resp
    assert asked.reasons and why in asked.reasons[-1], asked.reasons
    assert not tree.leaked(resp)


# ------------------------------------------------------------------ Medium 2 / Low 9


def test_file_named_like_an_option_is_not_run_through_a_glob(
    tree: Tree, make_sandbox: Callable[..., Sandbox]
) -> None:
    (tree.root / "--output=inside.txt").write_text("")
    asked = Asked()
    sb = make_sandbox(asked)
    refused(sb, "sort *", asked, "could expand to a file name starting with '-'", tree)
    assert (tree.root / "inside.txt").read_text() == "INSIDE\n"
    ok = call(sb, "execute_command", command="sort -- *.txt")
    assert ok.status == "success" and ok.result["exit_code"] == 0, ok


@pytest.mark.parametrize(
    "command",
    ["sort --o=marker inside.txt", "sort --comp=sh inside.txt", "git log --abbrev --output=marker"],
)
def test_abbreviated_and_optional_argument_write_options_ask(
    command: str, tree: Tree, make_sandbox: Callable[..., Sandbox]
) -> None:
    git(tree.root, "init", "-q")
    asked = Asked()
    resp = call(make_sandbox(asked), "execute_command", command=command)
    assert resp.status == "rejected" and asked.reasons, resp
    assert not (tree.root / "marker").exists()


# ------------------------------------------------------------------ Medium 5: hard links, secrets


@pytest.mark.parametrize(
    "command",
    ["cat hl", "head hl", "tail -n 1 hl", "grep -r TOP .", "grep -rn TOP sub", "cat *", "cat < hl"],
)
def test_hard_link_to_an_outside_file_is_not_printed_unasked(
    command: str, tree: Tree, make_sandbox: Callable[..., Sandbox]
) -> None:
    target = tree.root / "sub" / "hl" if "sub" in command else tree.root / "hl"
    os.link(tree.secret, target)
    asked = Asked()
    refused(make_sandbox(asked), command, asked, "hard-linked", tree)


@pytest.mark.parametrize(
    ("name", "command"),
    [
        (".env", "cat .env"),
        (".env.local", "head .env.local"),
        ("server.pem", "cat server.pem"),
        ("id_ed25519", "cat id_ed25519"),
        ("credentials.json", "wc -c credentials.json"),
        (".env", "grep -r KEY ."),
    ],
)
def test_secret_looking_files_need_approval(
    name: str, command: str, tree: Tree, make_sandbox: Callable[..., Sandbox]
) -> None:
    (tree.root / name).write_text("KEY=hunter2\n")
    asked = Asked()
    sb = make_sandbox(asked)
    resp = call(sb, "execute_command", command=command)
    assert resp.status == "rejected", resp
    assert "looks like a secret" in asked.reasons[-1]
    assert "hunter2" not in resp.model_dump_json()


def test_symlinks_met_in_a_walk_count_only_when_followed(
    tree: Tree, make_sandbox: Callable[..., Sandbox]
) -> None:
    os.link(tree.secret, tree.root / "hl")
    (tree.root / "sub" / "l").symlink_to("../hl")
    (tree.root / "sub" / "loop").symlink_to(".")
    asked = Asked()
    sb = make_sandbox(asked)
    refused(sb, "grep -R TOP sub", asked, "hard-linked", tree)
    resp = call(sb, "execute_command", command="grep -r NESTED sub")  # -r skips symlinks
    assert resp.status == "success" and "NESTED" in resp.result["stdout"], resp
    assert not tree.leaked(resp)


def test_plain_files_still_run_without_asking(
    tree: Tree, make_sandbox: Callable[..., Sandbox]
) -> None:
    resp = call(make_sandbox(), "execute_command", command="grep -rn NESTED . && cat *.txt")
    assert resp.status == "success" and "NESTED" in resp.result["stdout"], resp


# ------------------------------------------------------------------ Medium 3: git config


def _repo(root: Path) -> None:
    git(root, "init", "-q")
    git(root, "add", "inside.txt")
    git(root, "commit", "-qm", "one")
    (root / "inside.txt").write_text("CHANGED\n")
    git(root, "commit", "-qam", "two")
    (root / "inside.txt").write_text("CHANGED AGAIN\n")


@pytest.mark.parametrize(
    ("config", "command"),
    [
        (["diff.external", "sh -c 'echo PWNED-EXT'"], "git diff"),
        (["diff.x.textconv", "sh -c 'echo PWNED-TEXTCONV' --"], "git log -p"),
        (["filter.x.clean", "sh -c 'echo PWNED-FILTER'"], "git diff"),
        (["gpg.program", "sh -c 'echo PWNED-GPG'"], "git log --show-signature"),
        (["alias.st", "!sh -c 'echo PWNED-ALIAS'"], "git status"),
        (["core.fsmonitor", "sh -c 'echo PWNED-FSMONITOR'"], "git status"),
        (["include.path", "../elsewhere"], "git status"),
    ],
)
def test_repository_config_that_runs_programs_needs_approval(
    config: list[str], command: str, tree: Tree, make_sandbox: Callable[..., Sandbox]
) -> None:
    _repo(tree.root)
    (tree.root / ".gitattributes").write_text("*.txt diff=x filter=x\n")
    git(tree.root, "config", *config)
    asked = Asked()
    resp = call(make_sandbox(asked), "execute_command", command=command)
    assert resp.status == "rejected", resp
    assert "sets programs git may run" in asked.reasons[-1]
    assert "PWNED" not in resp.model_dump_json()


def test_clean_repository_git_runs_unasked(
    tree: Tree, make_sandbox: Callable[..., Sandbox]
) -> None:
    _repo(tree.root)
    resp = call(make_sandbox(), "execute_command", command="git log -p -n 1 && git diff")
    assert resp.status == "success" and resp.result["exit_code"] == 0, resp
    assert "CHANGED AGAIN" in resp.result["stdout"]


def test_embedded_bare_repository_is_not_used_implicitly(
    tree: Tree, make_sandbox: Callable[..., Sandbox]
) -> None:
    """`git -C tests/fixture.git log -p` in a cloned repo: its config must not run."""
    src = tree.base / "src"
    src.mkdir()
    (src / "a.txt").write_text("one\n")
    git(src, "init", "-q")
    git(src, "add", "a.txt")
    git(src, "commit", "-qm", "x")
    (tree.root / "tests").mkdir()
    git(tree.root / "tests", "clone", "-q", "--bare", str(src), "fixture.git")
    bare = tree.root / "tests" / "fixture.git"
    git(bare, "config", "diff.external", "sh -c 'echo PWNED-BARE'")
    asked = Asked()
    resp = call(make_sandbox(asked), "execute_command", command="git -C tests/fixture.git log -p")
    assert resp.status == "rejected" and "sets programs" in asked.reasons[-1], resp
    # Even approved, git refuses a bare repository it was not pointed at explicitly.
    resp = call(
        make_sandbox(approve_all), "execute_command", command="git -C tests/fixture.git log -p"
    )
    assert resp.status == "success" and resp.result["exit_code"] != 0, resp
    assert "PWNED" not in resp.result["stdout"] and "bare" in resp.result["stderr"]
