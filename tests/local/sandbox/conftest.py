"""Shared fixtures: a fresh project tree beside an outside "secret", and sandboxes over it.

Every test gets its own ``tmp_path`` layout::

    tmp/proj/            <- the only allowed root
        inside.txt
        sub/nested.txt
    tmp/outside/secret   <- must never be returned
    tmp/proj-evil/secret <- prefix sibling of the root

Tests that execute commands use ``needs_bwrap``: they skip, loudly, where
bubblewrap cannot create a sandbox, so nothing ever runs unconfined.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from voco.local.sandbox import AuditLog, Sandbox
from voco.protocol.messages import McpRequest

from .helpers import Tree


@pytest.fixture
def tree(tmp_path: Path) -> Tree:
    secret_text = f"TOP-SECRET-{uuid.uuid4().hex}"
    root = tmp_path / "proj"
    (root / "sub").mkdir(parents=True)
    (root / "inside.txt").write_text("INSIDE\n")
    (root / "sub" / "nested.txt").write_text("NESTED\n")
    outside = tmp_path / "outside"
    outside.mkdir()
    secret = outside / "secret"
    secret.write_text(secret_text + "\n")
    evil = tmp_path / "proj-evil"
    evil.mkdir()
    (evil / "secret").write_text(secret_text + "\n")
    return Tree(tmp_path, root, outside, secret, secret_text, evil)


@pytest.fixture(params=["openat2", "walk"])
def mode(request: pytest.FixtureRequest) -> str:
    """Run path tests through both resolvers: the kernel's and the fallback walk."""
    return str(request.param)


Approver = Callable[[McpRequest, str], bool] | None


@pytest.fixture
def make_sandbox(tree: Tree) -> Iterator[Callable[..., Sandbox]]:
    made: list[Sandbox] = []

    def factory(
        approver: Approver = None,
        mode: str = "openat2",
        roots: list[Path] | None = None,
        **kwargs: Any,
    ) -> Sandbox:
        sb = Sandbox(
            roots or [tree.root],
            approver,
            force_fallback_resolver=(mode == "walk"),
            **kwargs,
        )
        made.append(sb)
        return sb

    yield factory
    for sb in made:
        sb.close()


@pytest.fixture
def audit(tmp_path: Path) -> Iterator[AuditLog]:
    log = AuditLog(tmp_path / "audit" / "audit.jsonl")
    yield log
    log.close()
