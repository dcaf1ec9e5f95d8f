"""The shared project-layout tables (``voco.common.project_layout``)."""

from __future__ import annotations

import ast
import inspect

from voco.agent import name_lookup
from voco.common import project_layout
from voco.common.project_layout import (
    NOT_CONTENT_DIRS,
    SEARCH_SKIP_DIRS,
    WALK_SKIP_DIRS,
    project_language,
    runner_families,
)
from voco.local.sandbox import actions


def test_both_runtimes_read_the_one_table() -> None:
    assert actions.SEARCH_SKIP_DIRS is SEARCH_SKIP_DIRS
    assert name_lookup.WALK_SKIP_DIRS is WALK_SKIP_DIRS


def test_what_each_consumer_skips() -> None:
    # search never looks in version control, caches or installed dependencies
    assert {".git", "__pycache__", ".venv", "node_modules"} <= SEARCH_SKIP_DIRS
    # build output stays searchable; the name lookup walks past it (its budget is small)
    assert "build" not in SEARCH_SKIP_DIRS and "build" in WALK_SKIP_DIRS
    assert "env" not in SEARCH_SKIP_DIRS
    # listings leave out only what is nobody's content
    assert ".git" in NOT_CONTENT_DIRS and "node_modules" not in NOT_CONTENT_DIRS


def test_markers_in_priority_order() -> None:
    assert runner_families({"package.json", "pyproject.toml"}) == ["python", "node"]
    assert runner_families({"tox.ini", "setup.cfg", "pytest.ini"}) == ["python"]
    assert runner_families({"Cargo.toml", "Makefile", "go.mod"}) == ["make", "rust", "go"]
    assert runner_families({"README.md"}) == []
    assert project_language({"Makefile", "go.mod"}) == "Go"  # a Makefile names no language
    assert project_language({"setup.cfg"}) == "Python"
    assert project_language(set()) == ""


def test_common_imports_no_other_voco_package() -> None:
    tree = ast.parse(inspect.getsource(project_layout))
    modules = [n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)]
    modules += [a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names]
    assert not [m for m in modules if m.startswith("voco")]
