"""Choosing the test command from a project's files (``voco.agent.command_runners``)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.agent.command_drive import Drive, L, R, X, make_tree, ok, run, simple
from voco.agent.command_runners import (
    NO_TEST_SCRIPT_TEXT,
    choose_test_command,
    has_test_script,
)

JEST = json.dumps({"scripts": {"test": "jest"}})
NPM_INIT = json.dumps({"scripts": {"test": 'echo "Error: no test specified" && exit 1'}})


@pytest.mark.parametrize(
    ("files", "expected"),
    [
        ({"pyproject.toml": "", "uv.lock": ""}, [L("."), X("uv run pytest -q")]),
        ({"setup.py": ""}, [L("."), X("pytest -q")]),
        ({"setup.cfg": "[tool:pytest]\n"}, [L("."), X("pytest -q")]),
        ({"pytest.ini": "[pytest]\n"}, [L("."), X("pytest -q")]),
        ({"tox.ini": "[tox]\n"}, [L("."), X("pytest -q")]),
        ({"package.json": JEST}, [L("."), R("package.json"), X("npm test")]),
        ({"package.json": JEST, "yarn.lock": ""}, [L("."), R("package.json"), X("yarn test")]),
        (
            {"package.json": JEST, "pnpm-lock.yaml": ""},
            [L("."), R("package.json"), X("pnpm test")],
        ),
        # a package.json without a real test script does not decide; the next marker does
        (
            {"package.json": NPM_INIT, "Cargo.toml": ""},
            [L("."), R("package.json"), X("cargo test")],
        ),
        ({"Makefile": "test:\n"}, [L("."), X("make test")]),
        ({"Cargo.toml": ""}, [L("."), X("cargo test")]),
        ({"go.mod": "module x\n"}, [L("."), X("go test ./...")]),
        # Python first: a Python project with a package.json for its web page
        ({"pyproject.toml": "", "package.json": JEST}, [L("."), X("pytest -q")]),
        # no marker at all, but a tests folder of Python files
        ({"tests/test_app.py": "def test_x(): pass\n"}, [L("."), L("tests"), X("pytest -q")]),
        (
            {"test/test_app.py": "", "uv.lock": ""},
            [L("."), L("test"), X("uv run pytest -q")],
        ),
    ],
)
def test_test_command_from_project_files(
    tmp_path: Path, files: dict[str, str], expected: list[Any]
) -> None:
    calls, _ = run(Drive(make_tree(tmp_path, files)), "Run the tests.")
    assert simple(calls) == expected


@pytest.mark.parametrize("package", ["{}", NPM_INIT, json.dumps({"scripts": {"build": "vite"}})])
def test_package_json_without_test_script_says_so(tmp_path: Path, package: str) -> None:
    calls, reply = run(Drive(make_tree(tmp_path, {"package.json": package})), "Run the tests.")
    assert simple(calls) == [L("."), R("package.json")]  # nothing run that can only fail
    assert reply == NO_TEST_SCRIPT_TEXT


def test_no_test_runner_found(tmp_path: Path) -> None:
    calls, reply = run(Drive(make_tree(tmp_path, {"notes.txt": "x"})), "Run the tests.")
    assert simple(calls) == [L(".")]
    assert reply.startswith("I couldn't tell how to run the tests here")


def test_tests_folder_without_python_is_not_guessed(tmp_path: Path) -> None:
    root = make_tree(tmp_path, {"tests/app.test.js": "test('x', () => {})\n"})
    calls, reply = run(Drive(root), "Run the tests.")
    assert simple(calls) == [L("."), L("tests")]
    assert reply.startswith("I couldn't tell how to run the tests here")


def test_choose_test_command_said_runner_wins() -> None:
    assert choose_test_command("rust", {"pyproject.toml"}) == "cargo test"
    assert choose_test_command("", {"go.mod", "Makefile"}) == "make test"
    assert choose_test_command("", set()) == ""


def test_said_runner_skips_reading_package_json(tmp_path: Path) -> None:
    root = make_tree(tmp_path, {"package.json": "{}", "pyproject.toml": ""})
    calls, _ = run(Drive(root), "Run the JavaScript tests.")
    assert simple(calls) == [L("."), X("npm test")]


@pytest.mark.parametrize(
    ("result", "has"),
    [
        (ok({"content": JEST}), True),
        (ok({"content": NPM_INIT}), False),
        (ok({"content": '{"scripts": {"test": "  "}}'}), False),
        (ok({"content": '{"scripts": ["test"]}'}), False),
        (ok({"content": "[1, 2]"}), False),
        # unreadable or not JSON: let npm say what is wrong rather than guess
        (ok({"content": "{not json"}), True),
        ({"status": "error", "code": "too_large", "error": "big"}, True),
    ],
)
def test_has_test_script(result: dict[str, Any], has: bool) -> None:
    assert has_test_script(result) is has
