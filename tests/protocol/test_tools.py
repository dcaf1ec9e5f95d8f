"""The MCP tool table (``voco.protocol.tools``) is the one declaration: the wire
type, the sandbox, the models' specs and ``voco mcp`` all agree with it."""

from __future__ import annotations

import inspect
from typing import get_args

from voco.agent.tools import MCP_TOOLS
from voco.local.mcp_server import _Tools
from voco.local.sandbox.actions import ACTIONS
from voco.protocol.messages import McpAction
from voco.protocol.tools import TOOL_NAMES, TOOLS


def test_every_place_names_the_same_tools() -> None:
    assert set(get_args(McpAction)) == TOOL_NAMES
    assert set(ACTIONS) == TOOL_NAMES
    assert [t.name for t in MCP_TOOLS] == [t.name for t in TOOLS]


def test_mcp_server_methods_take_exactly_the_declared_inputs() -> None:
    for decl in TOOLS:
        params = inspect.signature(getattr(_Tools, decl.name)).parameters
        taken = {n for n in params if n not in ("self", "ctx")}
        assert taken == set(decl.input_schema["properties"]), decl.name
        required = {n for n, p in params.items() if p.default is inspect.Parameter.empty}
        assert required - {"self", "ctx"} == set(decl.input_schema["required"]), decl.name
