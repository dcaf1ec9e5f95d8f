"""execute_command end to end: real bwrap, real processes, marker files.

Every test here is skipped (loudly) where bubblewrap can't build a sandbox:
nothing in this file may run a command unconfined.
"""

from __future__ import annotations

import json
import os
import select
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from voco.local.sandbox import AuditLog, Sandbox, verify
from voco.protocol.messages import McpRequest

from .helpers import Tree, approve_all, call, needs_bwrap, refuse_all

pytestmark = [pytest.mark.timeout(20), needs_bwrap]

RESULT_KEYS = {"exit_code", "stdout", "stderr", "timed_out", "duration_ms"}


def test_allowed_command_runs_with_exact_result_shape(
    tree: Tree, make_sandbox: Callable[..., Sandbox]
) -> None:
    resp = call(make_sandbox(), "execute_command", command="cat inside.txt && ls sub")
    assert resp.status == "success", resp
    assert set(resp.result) == RESULT_KEYS
    assert resp.result["stdout"] == "INSIDE\nnested.txt\n"
    assert resp.result["exit_code"] == 0 and resp.result["timed_out"] is False


def test_argv_runs_without_a_shell(tree: Tree, make_sandbox: Callable[..., Sandbox]) -> None:
    marker = tree.root / "marker"
    resp = call(make_sandbox(), "execute_command", argv=["echo", f"$(touch {marker})"])
    assert resp.status == "success"
    assert resp.result["stdout"] == f"$(touch {marker})\n"
    assert not marker.exists()


def test_cwd_subdirectory(tree: Tree, make_sandbox: Callable[..., Sandbox]) -> None:
    resp = call(make_sandbox(), "execute_command", command="pwd; cat nested.txt", cwd="sub")
    assert resp.result["stdout"] == f"{tree.root.resolve()}/sub\nNESTED\n"


def test_nonzero_exit_is_success_status(tree: Tree, make_sandbox: Callable[..., Sandbox]) -> None:
    resp = call(make_sandbox(), "execute_command", command="ls does-not-exist")
    assert resp.status == "success" and resp.result["exit_code"] != 0


# ------------------------------------------------------------------ policy & approval


@pytest.mark.parametrize(
    "command",
    [
        "touch {m}",
        "echo pwn > {m}",
        "ls && touch {m}",
        "ls; touch {m}",
        "ls || true; touch {m}",
        "cat inside.txt | tee {m}",
        "bash -c 'touch {m}'",
        "sh -c 'touch {m}'",
        'python3 -c \'open("{m}", "w")\'',
        "FOO=1 touch {m}",
        "echo $(touch {m})",
        "echo `touch {m}`",
        "cat <(touch {m})",
        "find . -maxdepth 0 -exec touch {m} \\;",
        "find . -maxdepth 0 -fprint {m}",
        "sort -o {m} inside.txt",
        "git -c core.pager='touch {m}' -p log",
        "ls\\\n; touch {m}",
        "cat <<EOF | sh\ntouch {m}\nEOF",
        "xargs touch <<< {m}",
        "env touch {m}",
        "(touch {m})",
        "{{ touch {m}; }}",
    ],
)
@pytest.mark.parametrize("approver", [None, refuse_all], ids=["policy", "user"])
def test_risky_command_never_runs_without_approval(
    command: str,
    approver: Callable[[McpRequest, str], bool] | None,
    tree: Tree,
    make_sandbox: Callable[..., Sandbox],
) -> None:
    marker = "marker"
    resp = call(make_sandbox(approver), "execute_command", command=command.format(m=marker))
    assert resp.status == "rejected", resp
    assert resp.code == ("denied_by_policy" if approver is None else "denied_by_user")
    # refused before anything started: no process exists that could write it later
    assert not (tree.root / marker).exists()


def test_approved_command_runs_and_may_write(
    tree: Tree, make_sandbox: Callable[..., Sandbox]
) -> None:
    asked: list[str] = []

    def approver(_req: McpRequest, reason: str) -> bool:
        asked.append(reason)
        return True

    resp = call(make_sandbox(approver), "execute_command", command="echo hi > made.txt")
    assert resp.status == "success", resp
    assert (tree.root / "made.txt").read_text() == "hi\n"
    assert asked == ["writes to 'made.txt' (redirection >)"]


def test_allowed_command_cannot_write_roots(
    tree: Tree, make_sandbox: Callable[..., Sandbox]
) -> None:
    # Not risky -> roots are mounted read-only; `git status` would otherwise
    # refresh the index. Here: an allowed command with an odd flag that writes.
    resp = call(make_sandbox(), "execute_command", argv=["git", "init", "-q"])
    assert resp.status == "rejected"  # git init is not allow-listed
    assert not (tree.root / ".git").exists()


def test_progress_and_approval_order(tree: Tree, make_sandbox: Callable[..., Sandbox]) -> None:
    events: list[tuple[str, str | None]] = []
    sb = make_sandbox(
        approve_all, progress=lambda _id, stage, reason: events.append((stage, reason))
    )
    call(sb, "execute_command", command="touch x")
    assert events == [("awaiting_approval", "`touch` modifies files"), ("running", None)]


# ------------------------------------------------------------------ scope of arguments


@pytest.mark.parametrize(
    "payload",
    [
        {"command": "cat ../outside/secret"},
        {"command": "cat {secret}"},
        {"command": "head -n 1 ../outside/secret"},
        {"command": "grep -r SECRET .."},
        {"command": "grep -r SECRET {outside}"},
        {"command": "rg SECRET ../outside"},
        {"command": "ls .."},
        {"command": "ls ../proj-evil"},
        {"command": "find .. -name secret"},
        {"command": "git -C .. status"},
        {"command": "cat < ../outside/secret"},
        {"command": "diff inside.txt ../outside/secret"},
        {"command": "cat link-out"},
        {"command": "cat dir-out/secret"},
        {"command": "cat /proc/self/root{secret}"},
        {"command": "echo x > ../outside/pwn"},
        {"command": "rm -rf ../outside"},
        {"command": "cp inside.txt {outside}/pwn"},
        {"argv": ["cat", "../outside/secret"]},
        {"argv": ["cat", "{secret}"]},
        {"command": "ls", "cwd": ".."},
        {"command": "ls", "cwd": "{outside}"},
        {"command": "ls", "cwd": "dir-out"},
    ],
)
@pytest.mark.parametrize("approver", [None, approve_all], ids=["deny", "approve"])
def test_arguments_outside_roots_are_scope_violations(
    payload: dict[str, object],
    approver: Callable[[McpRequest, str], bool] | None,
    tree: Tree,
    make_sandbox: Callable[..., Sandbox],
    mode: str,
) -> None:
    (tree.root / "link-out").symlink_to("../outside/secret")
    (tree.root / "dir-out").symlink_to("../outside")
    asked: list[str] = []

    def spy(req: McpRequest, reason: str) -> bool:
        asked.append(reason)
        return approver is not None

    fmt = {"secret": str(tree.secret), "outside": str(tree.outside)}
    filled: dict[str, object] = {
        k: ([a.format(**fmt) for a in v] if isinstance(v, list) else str(v).format(**fmt))
        for k, v in payload.items()
    }
    resp = call(make_sandbox(spy, mode=mode), "execute_command", **filled)
    assert resp.code == "scope_violation", resp
    assert not tree.leaked(resp)
    assert asked == []  # never even asked
    assert sorted(p.name for p in tree.outside.iterdir()) == ["secret"]


@pytest.mark.parametrize(
    "script",
    [
        "cat {secret}",
        "cat /proc/1/root{secret}",
        "ls -la {outside}",
        "cd {base} && grep -r SECRET .",
        "cat /etc/shadow /etc/passwd; ls ~; env",
    ],
)
def test_approved_command_still_cannot_see_outside(
    script: str, tree: Tree, make_sandbox: Callable[..., Sandbox]
) -> None:
    # Hidden inside `bash -c '…'`, so the argument check can't see the path:
    # the mount namespace is what stops it.
    os.environ["VOCO_TEST_HOST_SECRET"] = tree.secret_text
    try:
        cmd = script.format(secret=tree.secret, outside=tree.outside, base=tree.base)
        resp = call(make_sandbox(approve_all), "execute_command", argv=["bash", "-c", cmd])
    finally:
        del os.environ["VOCO_TEST_HOST_SECRET"]
    assert resp.status == "success", resp
    assert not tree.leaked(resp)
    assert "root:" not in resp.result["stdout"]


def test_approved_command_cannot_write_outside(
    tree: Tree, make_sandbox: Callable[..., Sandbox]
) -> None:
    cmd = f"echo PWNED > {tree.outside}/pwned; echo PWNED > {tree.secret}; echo done"
    resp = call(make_sandbox(approve_all), "execute_command", argv=["bash", "-c", cmd])
    assert resp.result["stdout"] == "done\n"
    assert not (tree.outside / "pwned").exists()
    assert tree.secret.read_text() == tree.secret_text + "\n"


def test_no_network(tree: Tree, make_sandbox: Callable[..., Sandbox]) -> None:
    cmd = "exec 3<>/dev/tcp/1.1.1.1/53 && echo CONNECTED || echo refused"
    resp = call(make_sandbox(approve_all), "execute_command", argv=["bash", "-c", cmd])
    assert "CONNECTED" not in resp.result["stdout"]


def test_minimal_environment(tree: Tree, make_sandbox: Callable[..., Sandbox]) -> None:
    os.environ["VOCO_TEST_TOKEN"] = "leak-me"
    try:
        resp = call(make_sandbox(), "execute_command", command="printenv")
    finally:
        del os.environ["VOCO_TEST_TOKEN"]
    env = dict(line.split("=", 1) for line in resp.result["stdout"].splitlines())
    assert "VOCO_TEST_TOKEN" not in env
    assert env["HOME"] == "/tmp" and env["LANG"] == "C.UTF-8"
    assert env["GIT_CONFIG_NOSYSTEM"] == "1" and env["GIT_CONFIG_GLOBAL"] == "/dev/null"
    assert env["GIT_TERMINAL_PROMPT"] == "0"


def test_rlimits_applied(tree: Tree, make_sandbox: Callable[..., Sandbox]) -> None:
    resp = call(
        make_sandbox(approve_all),
        "execute_command",
        argv=["bash", "-c", "ulimit -t; ulimit -f; ulimit -n; ulimit -v"],
    )
    lines = resp.result["stdout"].split()
    assert lines[0] != "unlimited" and lines[1] != "unlimited"
    assert int(lines[2]) <= 1024 and lines[3] != "unlimited"


def test_git_hooks_and_fsmonitor_disabled(tree: Tree, make_sandbox: Callable[..., Sandbox]) -> None:
    subprocess.run(["git", "init", "-q", str(tree.root)], check=True)
    hook = tree.root / "evil.sh"
    hook.write_text("#!/bin/sh\ntouch fsmonitor-ran\n")
    hook.chmod(0o755)
    subprocess.run(["git", "-C", str(tree.root), "config", "core.fsmonitor", str(hook)], check=True)
    # Approved (env prefix) so the root is writable: only the git hardening stops the hook.
    resp = call(make_sandbox(approve_all), "execute_command", command="X=1 git status")
    assert resp.status == "success", resp
    assert not (tree.root / "fsmonitor-ran").exists()


def test_output_is_capped_and_marked(tree: Tree, make_sandbox: Callable[..., Sandbox]) -> None:
    (tree.root / "big.txt").write_bytes(b"x" * (3 << 20))
    resp = call(make_sandbox(), "execute_command", command="cat big.txt")
    out = resp.result["stdout"]
    assert out.startswith("x" * 1000)
    assert "[voco: output truncated" in out
    assert len(out) < (1 << 20) + 200


def test_timeout_kills_process_tree(tree: Tree, make_sandbox: Callable[..., Sandbox]) -> None:
    """Every process of the tree dies, detached ones included — seen as an event,
    not waited for: each child holds the write end of a FIFO the test reads, says
    "x" once it runs, and lives 30 s unless killed. EOF on the FIFO means no
    process holds it any more."""
    fifo = tree.root / "alive"
    os.mkfifo(fifo)
    reader = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)  # first: the writers' open won't block
    try:
        hold = "exec 3>alive; printf x >&3; sleep 30"
        script = f"({hold}) & setsid sh -c '{hold}' & sleep 30"
        # (the pytest timeout bounds the call: a sandbox that waited for `sleep 30` fails it)
        resp = call(
            make_sandbox(approve_all), "execute_command", argv=["bash", "-c", script], timeout_s=2
        )
        assert resp.status == "error" and resp.code == "timeout"
        assert resp.result["timed_out"] is True
        assert set(resp.result) == RESULT_KEYS
        seen = b""
        while True:  # until EOF: every holder is gone (a survivor lives 30 s: the select fails)
            ready, _, _ = select.select([reader], [], [], 20)
            assert ready, f"a process of the tree survived the timeout (read {seen!r})"
            chunk = os.read(reader, 16)
            if not chunk:
                break
            seen += chunk
        assert seen == b"xx"  # both children ran, so both were killed
    finally:
        os.close(reader)


def test_timeout_capped_at_sandbox_limit(tree: Tree, make_sandbox: Callable[..., Sandbox]) -> None:
    resp = call(
        make_sandbox(approve_all, timeout_s=0.5),
        "execute_command",
        command="sleep 10",
        timeout_s=25,
    )
    assert resp.code == "timeout" and resp.result["duration_ms"] < 3000


def test_audit_records_the_whole_story(
    tree: Tree, make_sandbox: Callable[..., Sandbox], audit: AuditLog
) -> None:
    sb = make_sandbox(refuse_all, audit=audit)
    call(sb, "execute_command", command="rm -rf sub")
    call(sb, "read_file", path="../outside/secret")
    kinds = [json.loads(line)["kind"] for line in audit.path.read_text().splitlines()]
    # rm: request, decision, approval, result; out-of-scope read: request, result
    assert kinds == ["request", "decision", "approval", "result", "request", "result"]
    text = audit.path.read_text()
    for needle in (
        '"kind":"request"',
        '"kind":"decision"',
        '"kind":"approval"',
        '"denied_by_user"',
        '"scope_violation"',
        "`rm` modifies files",
    ):
        assert needle in text
    assert verify(audit.path).ok
    assert (tree.root / "sub").exists()


def test_concurrent_requests_each_answered_once(
    tree: Tree, make_sandbox: Callable[..., Sandbox], audit: AuditLog
) -> None:
    from concurrent.futures import ThreadPoolExecutor

    sb = make_sandbox(audit=audit)
    reqs = [
        McpRequest(id=f"r{i}", action=a, payload=p)
        for i, (a, p) in enumerate(
            [
                ("read_file", {"path": "inside.txt"}),
                ("execute_command", {"command": "ls"}),
                ("list_dir", {"path": "."}),
                ("read_file", {"path": "../outside/secret"}),
            ]
            * 6
        )
    ]
    with ThreadPoolExecutor(8) as pool:
        resps = list(pool.map(sb.handle, reqs))
    assert [r.id for r in resps] == [r.id for r in reqs]
    assert all(
        r.status == ("error" if "outside" in str(q.payload) else "success")
        for q, r in zip(reqs, resps, strict=True)
    )
    assert verify(audit.path).ok


def test_paths_of_allowed_commands_inside_root_are_fine(
    tree: Tree, make_sandbox: Callable[..., Sandbox]
) -> None:
    resp = call(
        make_sandbox(), "execute_command", command=f"cat {tree.root}/inside.txt sub/../inside.txt"
    )
    assert resp.result["stdout"] == "INSIDE\nINSIDE\n"


def test_unwritten_path_operand_inside_is_fine(
    tree: Tree, make_sandbox: Callable[..., Sandbox]
) -> None:
    resp = call(make_sandbox(), "execute_command", command="ls new/dir/not/there")
    assert resp.status == "success" and resp.result["exit_code"] != 0


def test_root_dir_is_not_writable_by_allowed_command(
    tree: Tree, make_sandbox: Callable[..., Sandbox]
) -> None:
    # `sort` with a path operand is allowed; the read-only mount means even a
    # missed write flag could not modify the project.
    resp = call(make_sandbox(), "execute_command", command="sort inside.txt")
    assert resp.result["stdout"] == "INSIDE\n"
    assert Path(tree.root / "inside.txt").read_text() == "INSIDE\n"


def test_root_given_through_symlink_runs(tree: Tree, make_sandbox: Callable[..., Sandbox]) -> None:
    alias = tree.base / "alias"
    alias.symlink_to(tree.root)
    sb = make_sandbox(roots=[alias])
    resp = call(sb, "execute_command", command=f"cat {alias}/inside.txt {tree.root}/inside.txt")
    assert resp.result["stdout"] == "INSIDE\nINSIDE\n", resp
    resp = call(sb, "execute_command", command="pwd", cwd="sub")
    assert resp.result["stdout"] == f"{tree.root.resolve()}/sub\n"


def test_two_roots_both_visible(tree: Tree, make_sandbox: Callable[..., Sandbox]) -> None:
    other = tree.base / "other"
    other.mkdir()
    (other / "o.txt").write_text("OTHER\n")
    sb = make_sandbox(roots=[tree.root, other])
    resp = call(sb, "execute_command", command=f"cat inside.txt {other}/o.txt")
    assert resp.result["stdout"] == "INSIDE\nOTHER\n"
    resp = call(sb, "execute_command", command="cat o.txt", cwd=str(other))
    assert resp.result["stdout"] == "OTHER\n"


@pytest.mark.timeout(20)
def test_cancel_kills_a_running_command_and_still_answers(tmp_path):
    """A session that ends takes its commands with it (and nothing is left running:
    EOF on a FIFO the command holds, as in ``test_timeout_kills_process_tree``)."""
    import threading

    from voco.local.sandbox import Sandbox
    from voco.protocol.messages import McpRequest

    root = tmp_path / "root"
    root.mkdir()
    os.mkfifo(root / "alive")
    reader = os.open(root / "alive", os.O_RDONLY | os.O_NONBLOCK)
    sb = Sandbox([root], lambda req, reason: True, 30.0)
    req = McpRequest(
        id="long",
        action="execute_command",
        payload={"command": "exec 3>alive; printf x >&3; sleep 20; touch marker"},
    )
    out = {}
    t = threading.Thread(target=lambda: out.setdefault("r", sb.handle(req)))
    t.start()
    try:
        # until the command runs and holds the FIFO (its "x"); then cancel it
        assert select.select([reader], [], [], 20)[0], "the command never started"
        seen = os.read(reader, 16)
        assert seen == b"x"
        assert sb.cancel("long")
        t.join(10)
        assert not t.is_alive()  # cancelled: `sleep 20` did not run out
        resp = out["r"]
        assert resp.status == "error" and resp.code == "internal" and "cancelled" in resp.error
        while True:  # until EOF: nothing holds the FIFO (a survivor sleeps 20 s: select fails)
            ready, _, _ = select.select([reader], [], [], 15)
            assert ready, f"the cancelled command is still running (read {seen!r})"
            if not (chunk := os.read(reader, 16)):
                break
            seen += chunk
        assert not (root / "marker").exists()
        assert sb.cancel("long") is False
    finally:
        os.close(reader)
        sb.close()
