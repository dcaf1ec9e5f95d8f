"""Fixtures for the agent tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.agent.command_drive import TREE, make_tree


@pytest.fixture
def project(tmp_path: Path) -> Path:
    return make_tree(tmp_path / "project", TREE)
