"""JSON Schema of every wire message (engine protocol and /ui), one document.

``uv run python -m voco.protocol.schema`` prints it. ``$defs`` holds every
model; ``x-unions`` names the message sets each side may send, as lists of
``$ref``s, so a generator (``scripts/gen_ts_types.py``) can emit one type per
model and one union per direction without guessing.
"""

from __future__ import annotations

import json
import sys
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from voco.protocol import messages as m
from voco.protocol import ui_messages as ui

ENGINE_CLIENT: tuple[type[BaseModel], ...] = (
    m.SessionStart,
    m.TextInput,
    m.McpResponse,
    m.McpProgress,
    m.AudioPlayed,
    m.Interrupt,
    m.SessionEnd,
    m.Ping,
    m.ThreadHistoryRequest,
)
ENGINE_SERVER: tuple[type[BaseModel], ...] = (*ui.ENGINE_TO_PAGE, m.McpRequest)

UNIONS: dict[str, tuple[type[BaseModel], ...]] = {
    "EngineClientMessage": ENGINE_CLIENT,
    "EngineServerMessage": ENGINE_SERVER,
    "BrowserMessage": ui.BROWSER_MODELS,
    "PageMessage": ui.PAGE_MODELS,
}


def wire_schema() -> dict[str, Any]:
    models = {model for group in UNIONS.values() for model in group}
    ordered = sorted(models, key=lambda x: x.__name__)
    refs, doc = models_json_schema(
        [(x, "serialization") for x in ordered], ref_template="#/$defs/{model}"
    )
    unions = {
        name: [refs[(x, "serialization")]["$ref"] for x in group] for name, group in UNIONS.items()
    }
    defs = doc.get("$defs", {})
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "Voco wire messages (docs/protocol.md, docs/ui-protocol.md)",
        "$defs": dict(sorted(defs.items())),
        "x-unions": unions,
    }


def main() -> None:
    json.dump(wire_schema(), sys.stdout, indent=2, sort_keys=False)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
