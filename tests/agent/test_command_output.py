"""``execute_command`` results → spoken verdicts (``voco.agent.command_output``)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.agent.command_drive import (
    GIT_STATUS,
    Drive,
    Result,
    make_tree,
    run,
    run_result,
)
from voco.agent.command_output import changes_summary, porcelain_paths

PYTEST_FAIL = (
    "..F.\n=========================== short test summary info ============================\n"
    "FAILED tests/test_router.py::test_long_request - AssertionError\n"
    "1 failed, 3 passed, 1 skipped in 0.12s\n"
)


@pytest.mark.parametrize(
    ("command", "result", "expected"),
    [
        ("pytest -q", run_result("....\n4 passed in 0.05s\n"), "Tests passed: 4 passed."),
        (
            "pytest -q",
            run_result(PYTEST_FAIL, exit_code=1),
            "Tests failed: 1 failed, 3 passed and 1 skipped. "
            "The first failure is test long request in test router dot py.",
        ),
        (
            "pytest -q",
            run_result("\nno tests ran in 0.01s\n", exit_code=5),
            "No tests were collected.",
        ),
        (
            "npm test",
            run_result(
                "",
                "  ● Router › picks haiku\n\nTests:       1 failed, 12 passed, 13 total\n",
                exit_code=1,
            ),
            "Tests failed: 1 failed and 12 passed. The first failure is Router , picks haiku.",
        ),
        (
            "npm test",
            run_result("  Tests  2 failed | 10 passed (12)\n", exit_code=1),
            "Tests failed: 2 failed and 10 passed.",
        ),
        (
            "npm test",
            run_result("  12 passing (30ms)\n  1 pending\n"),
            "Tests passed: 12 passed and 1 pending.",
        ),
        (
            "npm test",
            run_result("", 'npm ERR! Missing script: "test"\n', exit_code=1),
            "This project's package json has no test script.",
        ),
        (
            "cargo test",
            run_result("test result: ok. 7 passed; 0 failed; 1 ignored; 0 measured\n"),
            "Tests passed: 7 passed and 1 skipped.",
        ),
        (
            "go test ./...",
            run_result(
                "ok  \tx/a\t0.01s\n--- FAIL: TestB (0.00s)\nFAIL\tx/b\t0.02s\n", exit_code=1
            ),
            "Tests failed: 1 package failed and 1 package passed. The first failure is TestB.",
        ),
        (
            "make test",
            run_result("", "boom\n", exit_code=2),
            "The tests failed with exit code 2. Last line: boom",
        ),
        (
            "npm install",
            run_result("added 3 packages\n"),
            "Done. The last line was: added 3 packages",
        ),
        ("npm install", run_result(""), "Done, with no output."),
        (
            "ls nope",
            run_result("", "ls: nope: No such file\n", exit_code=2),
            "That failed with exit code 2. The last line was: ls: nope: No such file",
        ),
        (
            "pytest -q",
            run_result("", "sh: pytest: command not found\n", exit_code=127),
            "pytest isn't installed on your computer.",
        ),
        (
            "pytest -q",
            run_result("", "", exit_code=-9, timed_out=True),
            "That command took too long, so it was stopped after 30 seconds.",
        ),
    ],
)
def test_command_summaries(project: Path, command: str, result: Result, expected: str) -> None:
    drive = Drive(project, {command: result})
    text = {
        "pytest -q": "Run the tests.",
        "npm test": "Run the JavaScript tests.",
        "cargo test": "Run cargo test.",
        "go test ./...": "Run go test ./...",
        "make test": "Make test.",
    }.get(command, f"Run {command}.")
    if command == "npm test":
        make_tree(project, {"package.json": "{}"})
    calls, reply = run(drive, text)
    assert calls[-1].arguments == {"command": command}
    assert reply == expected


def test_git_summaries(project: Path) -> None:
    status = "## main...origin/main [ahead 2]\n M src/a.py\nM  b.py\n?? new.txt\n?? other.txt\n"
    drive = Drive(
        project,
        {
            GIT_STATUS: run_result(status),
            "git diff --stat": run_result(
                " src/a.py | 12 +++++-----\n b.py | 3 ++-\n"
                " 2 files changed, 8 insertions(+), 7 deletions(-)\n"
            ),
            "git log --oneline -n 5": run_result(
                "a1b2c3d Add the model router\n9f8e7d6 Fix barge-in timing\n"
                "0011223 Initial commit\n"
            ),
            "git branch --show-current": run_result("feature/router\n"),
        },
    )
    assert run(drive, "Git status.")[1] == (
        "You're on main, 2 commits ahead. 4 files changed: 1 modified, 1 staged and 2 untracked."
    )
    assert run(drive, "What changed?")[1] == (
        "2 files changed: 8 lines added and 7 removed. Most changes are in a dot py in src."
    )
    assert run(drive, "Show the last commits.")[1] == (
        "The last 3 commits are: Add the model router; Fix barge-in timing; Initial commit."
    )
    assert run(drive, "What branch am I on?")[1] == "You're on branch feature/router."


def test_git_clean_empty_and_detached(project: Path) -> None:
    drive = Drive(
        project,
        {
            GIT_STATUS: run_result("## main\n"),
            "git diff --stat": run_result(""),
            "git branch --show-current": run_result("\n"),
            "git log --oneline -n 5": run_result(""),
        },
    )
    assert run(drive, "Git status.")[1] == "You're on main. The working tree is clean."
    assert run(drive, "What changed?")[1] == "There are no unstaged changes."
    assert run(drive, "Which branch is this?")[1] == "You're not on a branch; HEAD is detached."
    assert run(drive, "Show the last commits.")[1] == "There are no commits yet."


def test_not_a_git_repository(project: Path) -> None:
    failing = run_result("", "fatal: not a git repository (or any parent)\n", exit_code=128)
    _, reply = run(Drive(project, {GIT_STATUS: failing}), "Git status.")
    assert reply == "This folder isn't a git repository."


# ---------------------------------------------------------------------------- changes


def test_porcelain_paths() -> None:
    changed, untracked = porcelain_paths(
        '## main\n M a.py\nM  b.py\nR  old.py -> new.py\n?? "with space.txt"\n D gone.py\n'
    )
    assert changed == ["a.py", "b.py", "new.py", "gone.py"]
    assert untracked == ["with space.txt"]


@pytest.mark.parametrize(
    ("stat", "porcelain", "text"),
    [
        ("", "", "Nothing has changed since the last commit."),
        (
            "",
            "?? a.txt\n?? b.txt\n?? c.txt\n",
            "No tracked file changed since the last commit. "
            "3 new files are untracked: a dot txt, b dot txt and 1 more.",
        ),
        (
            " a.py | 2 +-\n b.py | 1 +\n c.py | 1 -\n d.py | 4 ++--\n"
            " 4 files changed, 4 insertions(+), 4 deletions(-)\n",
            " M a.py\nM  b.py\n M c.py\n M d.py\n",
            "Since the last commit, 4 files changed: 4 lines added and 4 removed. "
            "They are a dot py, b dot py, c dot py and 1 more.",
        ),
    ],
)
def test_changes_summary(stat: str, porcelain: str, text: str) -> None:
    assert changes_summary(stat, porcelain) == text
