"""The naming parts of a request (``voco.agent.command_targets``)."""

from __future__ import annotations

import pytest

from voco.agent.command_targets import (
    commit_count,
    folder,
    looks_like_file,
    runner_said,
    spoken_command,
    target,
    term,
)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("the file utils slash io dot py", ("utils/io.py", "file")),
        ("the guide in the docs folder", ("docs/guide", "")),
        ("the tests folder", ("tests", "dir")),
        ("the first lines of main dot py", ("main.py", "file")),
        ("the readme", ("readme", "")),
    ],
)
def test_target(raw: str, expected: tuple[str, str]) -> None:
    assert target(raw) == expected


def test_folder_and_file_words() -> None:
    assert folder("this project") == "" and folder("the src folder") == "src"
    assert looks_like_file("the readme") and looks_like_file("main dot py")
    assert not looks_like_file("route model")


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("the to-dos", "TODO"),
        ("fix me", "FIXME"),
        ("MyClass", "MyClass"),
        ("self dot path", "self.path"),
        ("max underscore steps", "max_steps"),
    ],
)
def test_term(raw: str, expected: str) -> None:
    assert term(raw) == expected


def test_counts_runners_and_commands() -> None:
    assert commit_count("show the last three commits") == 3
    assert commit_count("the last 50 commits") == 20
    assert commit_count("what was the last commit") == 1
    assert commit_count("show the commits") == 5
    assert runner_said("run the rust tests") == "rust" and runner_said("run the tests") == ""
    assert spoken_command("pytest dash dash verbose") == "pytest --verbose"
    assert spoken_command("ls src slash voco") == "ls src/voco"
    assert spoken_command("python three dash m pip") == "python3 -m pip"
