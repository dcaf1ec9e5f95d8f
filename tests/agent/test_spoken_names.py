"""File names in speech, both ways (``voco.agent.spoken_names``)."""

from __future__ import annotations

import pytest

from voco.agent.spoken_names import (
    Entry,
    name_score,
    normalise_spoken_name,
    rank_entries,
    speak_name,
    speak_path,
)


@pytest.mark.parametrize(
    ("spoken", "normalised"),
    [
        ("main dot py", "main.py"),
        ("Utils slash IO dot py", "utils/io.py"),
        ("read me", "readme"),
        ("set up dot c f g", "set up.cfg"),
        ("main dot pie", "main.py"),
        ("package dot jason", "package.json"),
        ("my underscore module dot py", "my_module.py"),
        ("pre dash commit dot yaml", "pre-commit.yaml"),
        ("dot git ignore", ".git ignore"),
        ("s-r-c", "src"),
        ("make file", "makefile"),
        ("pyproject dot tomel", "pyproject.toml"),
        ("Cargo.tomal", "cargo.toml"),
    ],
)
def test_normalise_spoken_name(spoken: str, normalised: str) -> None:
    assert normalise_spoken_name(spoken) == normalised


def test_name_scores() -> None:
    assert name_score("main.py", "main.py") == 1.0
    assert name_score("readme", "README.md") == 0.95
    assert name_score("set up.cfg", "setup.cfg") == 1.0
    assert name_score("source", "src") >= 0.9
    assert name_score("main.py", "main.pyc") < 0.72
    assert name_score("config", "app_config.toml") >= 0.72
    assert name_score("zebra", "main.py") < 0.5


def test_rank_entries_respects_kind_and_digits() -> None:
    entries = [Entry("tests", True), Entry("test_2.py", False), Entry("tests.md", False)]
    assert rank_entries("tests", entries, "dir")[0].entry.name == "tests"
    assert rank_entries("test two.py", entries, "file")[0].entry.name == "test_2.py"
    assert all(m.entry.is_dir for m in rank_entries("tests", entries, "dir"))


def test_speak_names_and_paths() -> None:
    assert speak_name("README.md") == "README dot md"
    assert speak_name("spoken_names.py") == "spoken names dot py"
    assert speak_name(".gitignore") == "dot gitignore"
    assert speak_path("main.py") == "main dot py"
    assert speak_path("src/voco/config.py") == "config dot py in src slash voco"
    assert speak_path("src/voco/agent/router.py") == "router dot py in the agent folder"
    assert speak_path(".") == "the project root"
