"""Plain helpers shared by the sandbox tests (fixtures live in conftest.py)."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from voco.local.sandbox import Sandbox, sandbox_status
from voco.protocol.messages import McpRequest, McpResponse

_OK, _WHY, _ = sandbox_status()
needs_bwrap = pytest.mark.skipif(
    not _OK, reason=f"SKIPPED: bubblewrap sandbox unusable here, refusing to execute: {_WHY}"
)


@dataclass
class Tree:
    base: Path
    root: Path
    outside: Path
    secret: Path
    secret_text: str
    evil: Path

    def leaked(self, response: McpResponse) -> bool:
        """Did any part of the response carry the outside secret?"""
        return self.secret_text in json.dumps(response.model_dump(), ensure_ascii=False)


def call(sb: Sandbox, action: str, **payload: Any) -> McpResponse:
    return sb.handle(McpRequest(id=uuid.uuid4().hex[:12], action=action, payload=payload))


def approve_all(_request: McpRequest, _reason: str) -> bool:
    return True


def refuse_all(_request: McpRequest, _reason: str) -> bool:
    return False
