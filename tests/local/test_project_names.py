"""``session.start.project_names``: what the runtime lists for the engine's
first-turn vocabulary, and only through its sandbox."""

from __future__ import annotations

import json
import os
from pathlib import Path

from voco.local.mcp_bridge import NAME_FOLDERS, McpBridge
from voco.protocol import messages as m


def _project(root: Path) -> Path:
    (root / "src" / "voco").mkdir(parents=True)
    (root / "src" / "parse_config.py").write_text("")
    (root / "docs").mkdir()
    (root / "docs" / "protocol.md").write_text("")
    (root / "README.md").write_text("# demo\n")
    (root / ".git" / "objects").mkdir(parents=True)
    (root / ".git" / "HEAD").write_text("ref: refs/heads/main\n")
    (root / "node_modules" / "left-pad").mkdir(parents=True)
    (root / ".ssh").mkdir()
    (root / ".ssh" / "id_ed25519").write_text("PRIVATE")
    return root


async def test_names_are_the_root_and_its_visible_folders(tmp_path: Path):
    bridge = McpBridge([_project(tmp_path / "p")], "deny")
    names = await bridge.project_names()
    assert {"README.md", "src", "docs", "parse_config.py", "voco", "protocol.md"} <= set(names)
    # hidden, vendored and credential folders are named (the root's list_dir
    # shows them too) but never opened
    assert {".git", "node_modules", ".ssh"} <= set(names)
    assert not {"HEAD", "objects", "left-pad", "id_ed25519"} & set(names)
    assert len(names) == len(set(names))


async def test_every_listing_is_audited(tmp_path: Path):
    bridge = McpBridge([_project(tmp_path / "p")], "deny")
    await bridge.project_names()
    log = Path(os.environ["VOCO_AUDIT_LOG"]).read_text().splitlines()
    listed = [json.loads(line) for line in log if '"list_dir"' in line]
    paths = {str(e.get("data", {}).get("payload", {}).get("path")) for e in listed}
    assert {".", "src", "docs"} <= paths, listed[:2]
    assert not {".git", "node_modules", ".ssh"} & paths


async def test_names_are_capped_for_the_wire(tmp_path: Path):
    root = tmp_path / "big"
    root.mkdir()
    for i in range(NAME_FOLDERS + 2):
        (root / f"pkg{i}").mkdir()
        for j in range(40):
            (root / f"pkg{i}" / f"mod_{i}_{j}.py").write_text("")
    (root / ("x" * 200)).write_text("")  # longer than the wire allows: left out
    names = await McpBridge([root], "deny").project_names()
    assert len(names) == m.MAX_PROJECT_NAMES
    assert all(len(n) <= m.MAX_NAME_CHARS for n in names)
    # what the runtime sends always passes the engine's own validation
    m.SessionStart(project_names=names)
    assert not any(n.startswith(f"mod_{NAME_FOLDERS}_") for n in names)  # 8 folders at most


async def test_a_symlink_out_of_the_project_is_not_followed(tmp_path: Path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "passwords.txt").write_text("")
    root = _project(tmp_path / "p")
    (root / "escape").symlink_to(outside, target_is_directory=True)
    names = await McpBridge([root], "deny").project_names()
    assert "escape" in names and "passwords.txt" not in names
