"""Which command runs a project's tests, from what its root really contains.

The marker files are the shared table in :mod:`voco.common.project_layout`
(``pyproject.toml``, ``setup.cfg``, ``pytest.ini``, ``tox.ini`` … → pytest;
``package.json`` → npm/yarn/pnpm; ``Cargo.toml`` → cargo test; ``go.mod`` →
go test ./...). Two need a look inside rather than a name: ``package.json``
counts only if its ``scripts`` have a real ``test`` (``npm init`` writes one that
just fails), and a bare ``tests/`` folder of Python files means pytest. Like the
planner, this is a pure function of the steps taken so far: it asks for the
listing or file it still needs, or answers with the command.
"""

from __future__ import annotations

import json
from typing import Any

from voco.agent.command_types import (
    Call,
    Intent,
    Reply,
    Step,
    entries_of,
    find_step,
    is_ok,
    listings,
)
from voco.agent.summaries import error_text
from voco.common.project_layout import runner_families

NO_RUNNER_TEXT = (
    "I couldn't tell how to run the tests here: I see no pyproject, package json, "
    "Makefile, Cargo, go module or tests folder. Say, for example, run pytest."
)
NO_TEST_SCRIPT_TEXT = "This project's package json has no test script."
_NPM_PLACEHOLDER = "no test specified"
_PACKAGE_JSON = {"path": "package.json"}


def choose_test_command(family: str, names: set[str]) -> str:
    """The test command for a runner family (the first the markers suggest when
    ``family`` is ""), given the names at the project root."""
    if not family:
        family = next(iter(runner_families(names)), "")
    if family == "python":
        return "uv run pytest -q" if "uv.lock" in names else "pytest -q"
    if family == "node":
        if "pnpm-lock.yaml" in names:
            return "pnpm test"
        return "yarn test" if "yarn.lock" in names else "npm test"
    return {"make": "make test", "rust": "cargo test", "go": "go test ./..."}.get(family, "")


def has_test_script(result: dict[str, Any]) -> bool:
    """Whether a read of ``package.json`` shows a usable ``scripts.test``.

    A file that cannot be read or parsed counts as having one: npm then says
    what is wrong with it, which is more use than a guess here.
    """
    if not is_ok(result):
        return True
    try:
        data = json.loads(str((result.get("result") or {}).get("content") or ""))
    except ValueError:
        return True
    scripts = data.get("scripts") if isinstance(data, dict) else None
    script = scripts.get("test") if isinstance(scripts, dict) else None
    return isinstance(script, str) and bool(script.strip()) and _NPM_PLACEHOLDER not in script


def tests_command(intent: Intent, steps: list[Step]) -> str | Call | Reply:
    """The command to run, the call still needed to decide, or why there is none."""
    root = listings(steps).get(".")
    if root is None:
        return Call("list_dir", {"path": "."})
    if not is_ok(root):
        return Reply(error_text("list_dir", {"path": "."}, root))
    entries = entries_of(root)
    names = {n for n, _ in entries}
    if intent.command:  # the user named the runner
        return choose_test_command(intent.command, names) or Reply(NO_RUNNER_TEXT)
    scriptless = False
    for family in runner_families(names):
        if family != "node":
            return choose_test_command(family, names)
        package = find_step(steps, "read_file", _PACKAGE_JSON)
        if package is None:
            return Call("read_file", dict(_PACKAGE_JSON))
        if has_test_script(package.result):
            return choose_test_command("node", names)
        scriptless = True
    folder = next((n for n in ("tests", "test") if (n, True) in entries), None)
    if folder is not None:
        inside = listings(steps).get(folder)
        if inside is None:
            return Call("list_dir", {"path": folder})
        if is_ok(inside) and any(n.endswith(".py") for n, d in entries_of(inside) if not d):
            return choose_test_command("python", names)
    return Reply(NO_TEST_SCRIPT_TEXT if scriptless else NO_RUNNER_TEXT)
