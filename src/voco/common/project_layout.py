"""What a project folder usually contains: which folders are noise, which files say
what kind of project it is. One table each, read by both runtimes.

Why here: the local runtime's ``search_text`` and the engine-side command mode
both need "which folders are not the user's code" and must not import each other
(``agent`` runs in the engine, ``local.sandbox`` on the user's machine). The sets
are split by *why* a folder is skipped, so each consumer states which reasons it
applies instead of keeping its own copy of the names:

- ``search_text`` skips :data:`SEARCH_SKIP_DIRS` (version control, tool caches,
  installed dependencies): matches there are never what a user is asking about.
- The command mode's name lookup also walks past :data:`GENERATED_DIRS` (build
  output that mirrors the sources) and every dot-folder, because it has a budget
  of ten listings per spoken name; a folder named there is still found when said
  at the level it sits in.
- Spoken listings leave :data:`VCS_DIRS` and :data:`CACHE_DIRS` out of the
  counts ("4 folders", not 5 because of ``.git``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

VCS_DIRS: frozenset[str] = frozenset({".git", ".hg", ".svn"})
CACHE_DIRS: frozenset[str] = frozenset(
    {"__pycache__", ".mypy_cache", ".pytest_cache", ".ruff_cache", ".tox"}
)
DEPENDENCY_DIRS: frozenset[str] = frozenset({"node_modules", ".venv", "venv", "site-packages"})
# "env" is the other usual name of a virtualenv; it stays searchable because
# projects also keep settings in an ``env/`` folder.
GENERATED_DIRS: frozenset[str] = frozenset({"target", "dist", "build", "coverage", "env"})

SEARCH_SKIP_DIRS: frozenset[str] = VCS_DIRS | CACHE_DIRS | DEPENDENCY_DIRS
WALK_SKIP_DIRS: frozenset[str] = CACHE_DIRS | DEPENDENCY_DIRS | GENERATED_DIRS
NOT_CONTENT_DIRS: frozenset[str] = VCS_DIRS | CACHE_DIRS

RunnerFamily = Literal["", "python", "node", "make", "rust", "go"]


@dataclass(frozen=True)
class Marker:
    """A file at a project's root that says what the project is and how it is tested."""

    name: str
    language: str  # "" when the file says nothing about the language (a Makefile)
    tests: RunnerFamily  # "" when it says nothing about how to run the tests


# In priority order: the first marker present decides (a Python project with a
# package.json for its web page is tested with pytest).
PROJECT_MARKERS: tuple[Marker, ...] = (
    Marker("pyproject.toml", "Python", "python"),
    Marker("setup.py", "Python", "python"),
    Marker("setup.cfg", "Python", "python"),
    Marker("pytest.ini", "Python", "python"),
    Marker("tox.ini", "Python", "python"),
    Marker("conftest.py", "Python", "python"),
    Marker("requirements.txt", "Python", "python"),
    Marker("package.json", "JavaScript", "node"),
    Marker("Makefile", "", "make"),
    Marker("makefile", "", "make"),
    Marker("GNUmakefile", "", "make"),
    Marker("Cargo.toml", "Rust", "rust"),
    Marker("go.mod", "Go", "go"),
    Marker("pom.xml", "Java", ""),
    Marker("build.gradle", "Java or Kotlin", ""),
    Marker("Gemfile", "Ruby", ""),
    Marker("composer.json", "PHP", ""),
    Marker("CMakeLists.txt", "C or C++", ""),
)


def project_language(names: set[str]) -> str:
    """The language the root's marker files name, or ""."""
    return next((m.language for m in PROJECT_MARKERS if m.language and m.name in names), "")


def runner_families(names: set[str]) -> list[RunnerFamily]:
    """The test runner families the root's marker files suggest, best first, once each."""
    found = [m.tests for m in PROJECT_MARKERS if m.tests and m.name in names]
    return list(dict.fromkeys(found))
